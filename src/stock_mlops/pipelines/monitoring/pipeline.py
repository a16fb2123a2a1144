"""Wiring of the monitoring pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.monitoring.nodes import build_monitoring_report


def create_pipeline(**kwargs) -> Pipeline:
    """features + predictions + realised prices -> evidently HTML report and summary."""
    return Pipeline(
        [
            Node(
                func=build_monitoring_report,
                inputs=[
                    "features",
                    "evaluation_predictions",
                    "predictions",
                    "prices",
                    "params:monitoring",
                    "params:team",
                ],
                outputs=["monitoring_report", "monitoring_summary", "monitoring_metrics_mlflow"],
                name="build_monitoring_report_node",
            )
        ]
    )
