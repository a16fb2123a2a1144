"""Wiring of the training pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.training.nodes import (
    compute_evaluation_metrics,
    decide_promotion,
    predict_out_of_sample,
    register_forecaster,
    request_alias_update,
    score_champion,
    train_forecaster,
    train_walk_forward_models,
    validate_training_config,
)


def create_pipeline(**kwargs) -> Pipeline:
    """validate config -> train -> store, register -> evaluate against baselines -> gate."""
    return Pipeline(
        [
            Node(
                func=validate_training_config,
                inputs={
                    "ludwig_config": "ludwig_config",
                    "features": "features",
                    "scope": "params:training.scope",
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
                },
                outputs=["forecaster", "training_curves", "training_tags"],
                name="train_forecaster_node",
            ),
            Node(
                func=register_forecaster,
                inputs={"forecaster": "forecaster", "training_tags": "training_tags"},
                outputs="registered_forecaster",
                name="register_forecaster_node",
            ),
            Node(
                func=train_walk_forward_models,
                inputs={
                    "features": "features",
                    "ludwig_config": "validated_ludwig_config",
                    "params": "params:training",
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
                },
                outputs="evaluation_predictions",
                name="predict_out_of_sample_node",
            ),
            Node(
                func=compute_evaluation_metrics,
                inputs={"evaluation_predictions": "evaluation_predictions", "features": "features"},
                outputs=["evaluation_metrics", "evaluation_metrics_mlflow"],
                name="compute_evaluation_metrics_node",
            ),
            Node(
                func=score_champion,
                inputs={
                    "champion_model": "champion_model",
                    "features": "features",
                    "params": "params:training",
                },
                outputs="champion_score",
                name="score_champion_node",
            ),
            Node(
                func=decide_promotion,
                inputs={
                    "evaluation_metrics": "evaluation_metrics",
                    "champion_score": "champion_score",
                    "registered_forecaster": "registered_forecaster",
                    "params": "params:training",
                },
                outputs="promotion_decision",
                name="decide_promotion_node",
            ),
            Node(
                func=request_alias_update,
                inputs={"promotion_decision": "promotion_decision"},
                outputs="champion_alias",
                name="request_alias_update_node",
            ),
        ],
        inputs={"features", "ludwig_config", "champion_model"},
        outputs={
            "validated_ludwig_config",
            "forecaster",
            "registered_forecaster",
            "training_curves",
            "training_tags",
            "evaluation_predictions",
            "evaluation_metrics",
            "evaluation_metrics_mlflow",
            "promotion_decision",
            "champion_alias",
        },
        parameters={
            "params:training",
            "params:training.scope",
            "params:team",
            "params:feature_engineering.targets.direction_band",
        },
        namespace="training",
    )
