"""Wiring of the training pipeline.

Two entry nodes produce the ``training_plan`` every other node follows:

- ``plan_training`` (the ``training`` pipeline): train now - what `kedro run --pipelines
  training`, a DVC stage or a person asks for;
- ``schedule_retraining`` (the daily loop, ``__default__``): train only when the retrain policy
  says so; otherwise every node leaves its stored outputs as they are.
"""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.training.nodes import (
    compute_evaluation_metrics,
    decide_promotion,
    plan_training,
    predict_out_of_sample,
    record_training,
    register_forecaster,
    request_alias_update,
    schedule_retraining,
    score_champion_on_gate,
    train_forecaster,
    train_walk_forward_models,
    validate_training_config,
)

_PLAN = "training_plan"
_PUBLIC_OUTPUTS = {
    "validated_ludwig_config",
    "forecaster",
    "registered_forecaster",
    "training_curves",
    "training_tags",
    "hyperopt_trials",
    "evaluation_predictions",
    "evaluation_metrics",
    "evaluation_metrics_mlflow",
    "promotion_decision",
    "promotion_metrics_mlflow",
    "champion_alias",
    "training_history",
    "deployed_model_card",
}
_PARAMETERS = {
    "params:training",
    "params:training.scope",
    "params:team",
    "params:run_date",
    "params:feature_engineering.targets.direction_band",
}


def create_pipeline(**kwargs) -> Pipeline:
    """Train now: validate config -> train -> store, register -> evaluate -> gate -> record."""
    plan = Node(
        func=plan_training,
        inputs={
            "features": "features",
            "ludwig_config": "ludwig_config",
            "params": "params:training",
            "run_date": "params:run_date",
        },
        outputs=_PLAN,
        name="plan_training_node",
    )
    return _training([plan], inputs={"features", "ludwig_config", "champion_model", "run_info"})


def create_daily_pipeline() -> Pipeline:
    """The daily loop's training: the same nodes, run only when the retrain policy says so."""
    schedule = Node(
        func=schedule_retraining,
        inputs={
            "features": "features",
            "ludwig_config": "ludwig_config",
            "params": "params:training",
            "run_date": "params:run_date",
            "last_training_runs": "last_training_runs",
            "previous_monitoring_alert": "previous_monitoring_alert",
        },
        outputs=_PLAN,
        name="schedule_retraining_node",
    )
    return _training(
        [schedule],
        inputs={
            "features",
            "ludwig_config",
            "champion_model",
            "run_info",
            "last_training_runs",
            "previous_monitoring_alert",
        },
    )


def _training(entry: list[Node], inputs: set[str]) -> Pipeline:
    return Pipeline(
        [*entry, *_fit_and_gate_nodes()],
        inputs=inputs,
        outputs=_PUBLIC_OUTPUTS,
        parameters=_PARAMETERS,
        namespace="training",
    )


def _fit_and_gate_nodes() -> list[Node]:
    return [
        Node(
            func=validate_training_config,
            inputs={
                "ludwig_config": "ludwig_config",
                "features": "features",
                "scope": "params:training.scope",
                "training_plan": _PLAN,
            },
            outputs="validated_ludwig_config",
            name="validate_training_config_node",
        ),
        Node(
            func=train_forecaster,
            inputs={
                "features": "features",
                "ludwig_config": "validated_ludwig_config",
                "params": "params:training",
                "team": "params:team",
                "training_plan": _PLAN,
            },
            outputs=["forecaster", "training_curves", "training_tags", "hyperopt_trials"],
            name="train_forecaster_node",
        ),
        Node(
            func=register_forecaster,
            inputs={
                "forecaster": "forecaster",
                "training_tags": "training_tags",
                "training_plan": _PLAN,
            },
            outputs="registered_forecaster",
            name="register_forecaster_node",
        ),
        Node(
            func=train_walk_forward_models,
            inputs={
                "features": "features",
                "ludwig_config": "validated_ludwig_config",
                "params": "params:training",
                "training_plan": _PLAN,
            },
            outputs="walk_forward_models",
            name="train_walk_forward_models_node",
        ),
        Node(
            func=predict_out_of_sample,
            inputs={
                "forecaster": "forecaster",
                "walk_forward_models": "walk_forward_models",
                "features": "features",
                "ludwig_config": "validated_ludwig_config",
                "params": "params:training",
                "direction_band": "params:feature_engineering.targets.direction_band",
                "training_plan": _PLAN,
            },
            outputs="evaluation_predictions",
            name="predict_out_of_sample_node",
        ),
        Node(
            func=compute_evaluation_metrics,
            inputs={
                "evaluation_predictions": "evaluation_predictions",
                "features": "features",
                "training_plan": _PLAN,
            },
            outputs=["evaluation_metrics", "evaluation_metrics_mlflow"],
            name="compute_evaluation_metrics_node",
        ),
        Node(
            func=score_champion_on_gate,
            inputs={
                "champion_model": "champion_model",
                "features": "features",
                "training_plan": _PLAN,
                "params": "params:training",
            },
            outputs="champion_on_gate",
            name="score_champion_on_gate_node",
        ),
        Node(
            func=decide_promotion,
            inputs={
                "evaluation_predictions": "evaluation_predictions",
                "champion_on_gate": "champion_on_gate",
                "registered_forecaster": "registered_forecaster",
                "params": "params:training",
                "training_plan": _PLAN,
            },
            outputs=["promotion_decision", "promotion_metrics_mlflow"],
            name="decide_promotion_node",
        ),
        Node(
            func=request_alias_update,
            inputs={"promotion_decision": "promotion_decision", "training_plan": _PLAN},
            outputs="champion_alias",
            name="request_alias_update_node",
        ),
        Node(
            func=record_training,
            inputs={
                "training_plan": _PLAN,
                "promotion_decision": "promotion_decision",
                "champion_on_gate": "champion_on_gate",
                "run_info": "run_info",
            },
            outputs=["training_history", "deployed_model_card"],
            name="record_training_node",
        ),
    ]
