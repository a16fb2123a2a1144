"""Wiring of the serving pipeline (not part of the daily loop: `make price-model` runs it)."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.serving.nodes import request_price_model


def create_pipeline(**kwargs) -> Pipeline:
    """champion + prices -> the champion registered as a model for prediction from prices."""
    return Pipeline(
        [
            Node(
                func=request_price_model,
                inputs={
                    "champion_model": "champion_model",
                    "prices": "prices",
                    "feature_engineering": "params:feature_engineering",
                    "params": "params:serving",
                },
                outputs="price_forecaster",
                name="request_price_model_node",
            )
        ],
        inputs={"champion_model", "prices"},
        outputs={"price_forecaster"},
        parameters={"params:feature_engineering", "params:serving"},
        namespace="serving",
    )
