"""Wiring of the training pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.training.nodes import (
    compute_evaluation_metrics,
    decide_promotion,
    evaluate_out_of_sample,
    publish_forecaster,
    score_champion,
    train_forecaster,
    validate_training_config,
)


def create_pipeline(**kwargs) -> Pipeline:
    """validate config -> train -> evaluate against baselines -> register -> promotion gate."""
    return Pipeline(
        [
            Node(
                func=validate_training_config,
                inputs=["ludwig_config", "features", "params:training"],
                outputs="validated_ludwig_config",
                name="validate_training_config_node",
            ),
            Node(
                func=train_forecaster,
                inputs=[
                    "features",
                    "validated_ludwig_config",
                    "params:training",
                    "params:team",
                    "run_info",
                ],
                outputs=["trained_forecaster", "training_curves", "training_tags"],
                name="train_forecaster_node",
            ),
            Node(
                func=publish_forecaster,
                inputs="trained_forecaster",
                outputs=["forecaster", "registered_forecaster"],
                name="publish_forecaster_node",
            ),
            Node(
                func=evaluate_out_of_sample,
                inputs=[
                    "trained_forecaster",
                    "features",
                    "validated_ludwig_config",
                    "params:training",
                    "params:feature_engineering",
                ],
                outputs="evaluation_predictions",
                name="evaluate_out_of_sample_node",
            ),
            Node(
                func=compute_evaluation_metrics,
                inputs="evaluation_predictions",
                outputs=["evaluation_metrics", "evaluation_metrics_mlflow"],
                name="compute_evaluation_metrics_node",
            ),
            Node(
                func=score_champion,
                inputs=["champion_model", "features", "params:training"],
                outputs="champion_score",
                name="score_champion_node",
            ),
            Node(
                func=decide_promotion,
                inputs=[
                    "evaluation_metrics",
                    "champion_score",
                    "registered_forecaster",
                    "params:training",
                ],
                outputs=["promotion_decision", "champion_alias"],
                name="decide_promotion_node",
            ),
        ]
    )
