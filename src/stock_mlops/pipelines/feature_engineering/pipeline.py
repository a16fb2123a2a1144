"""Wiring of the feature_engineering pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.feature_engineering.nodes import build_features, describe_features


def create_pipeline(**kwargs) -> Pipeline:
    """prices -> features (indicators, targets, warm-up dropped) and the kind of each feature."""
    return Pipeline(
        [
            Node(
                func=build_features,
                inputs={"prices": "prices", "params": "params:feature_engineering"},
                outputs="features",
                name="build_features_node",
            ),
            Node(
                func=describe_features,
                inputs={"params": "params:feature_engineering"},
                outputs="feature_kinds",
                name="describe_features_node",
            ),
        ],
        inputs={"prices"},
        outputs={"features", "feature_kinds"},
        parameters={"params:feature_engineering"},
        namespace="feature_engineering",
    )
