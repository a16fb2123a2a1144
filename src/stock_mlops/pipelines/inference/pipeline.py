"""Wiring of the inference pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.inference.nodes import predict_next_day


def create_pipeline(**kwargs) -> Pipeline:
    """features + model (champion or newest local) -> predictions log."""
    return Pipeline(
        [
            Node(
                func=predict_next_day,
                inputs=[
                    "features",
                    "champion_model",
                    "forecaster",
                    "params:inference",
                    "params:feature_engineering",
                    "params:team",
                    "params:run_date",
                    "run_info",
                ],
                outputs="predictions",
                name="predict_next_day_node",
            )
        ]
    )
