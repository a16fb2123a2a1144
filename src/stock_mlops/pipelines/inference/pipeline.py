"""Wiring of the inference pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.inference.nodes import predict_next_day


def create_pipeline(**kwargs) -> Pipeline:
    """features + model (champion or newest local) -> predictions log."""
    return Pipeline(
        [
            Node(
                func=predict_next_day,
                inputs={
                    "features": "features",
                    "champion_model": "champion_model",
                    "latest_model": "forecaster",
                    "params": "params:inference",
                    "direction_band": "params:feature_engineering.targets.direction_band",
                    "team": "params:team",
                    "run_date": "params:run_date",
                    "run_info": "run_info",
                },
                outputs="predictions",
                name="predict_next_day_node",
            )
        ],
        inputs={"features", "champion_model", "forecaster", "run_info"},
        outputs={"predictions"},
        parameters={
            "params:inference",
            "params:feature_engineering.targets.direction_band",
            "params:team",
            "params:run_date",
        },
        namespace="inference",
    )
