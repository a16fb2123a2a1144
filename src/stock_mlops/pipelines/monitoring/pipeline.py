"""Wiring of the monitoring pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.monitoring.nodes import (
    drift_report,
    drift_windows,
    prediction_outcomes,
    quality_report,
    quality_windows,
    render_monitoring_report,
    summarise_monitoring,
)


def create_pipeline(**kwargs) -> Pipeline:
    """features + predictions + realised prices -> evidently reports, summary and HTML page."""
    return Pipeline(
        [
            Node(
                func=drift_windows,
                inputs={"features": "features", "params": "params:monitoring"},
                outputs=["drift_reference", "drift_current"],
                name="drift_windows_node",
            ),
            Node(
                func=prediction_outcomes,
                inputs={
                    "evaluation_predictions": "evaluation_predictions",
                    "predictions": "predictions",
                    "prices": "prices",
                    "team": "params:team",
                },
                outputs="prediction_outcomes",
                name="prediction_outcomes_node",
            ),
            Node(
                func=quality_windows,
                inputs={"outcomes": "prediction_outcomes", "params": "params:monitoring"},
                outputs=["quality_reference", "quality_current"],
                name="quality_windows_node",
            ),
            Node(
                func=drift_report,
                inputs={"reference": "drift_reference", "current": "drift_current"},
                outputs="drift_snapshot",
                name="drift_report_node",
            ),
            Node(
                func=quality_report,
                inputs={"reference": "quality_reference", "current": "quality_current"},
                outputs="quality_snapshot",
                name="quality_report_node",
            ),
            Node(
                func=summarise_monitoring,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "drift_reference": "drift_reference",
                    "quality_reference": "quality_reference",
                    "quality_current": "quality_current",
                },
                outputs=["monitoring_summary", "monitoring_metrics_mlflow"],
                name="summarise_monitoring_node",
            ),
            Node(
                func=render_monitoring_report,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "quality_snapshot": "quality_snapshot",
                    "monitoring_summary": "monitoring_summary",
                    "team": "params:team",
                },
                outputs="monitoring_report",
                name="render_monitoring_report_node",
            ),
        ],
        inputs={"features", "evaluation_predictions", "predictions", "prices"},
        outputs={
            "prediction_outcomes",
            "monitoring_summary",
            "monitoring_metrics_mlflow",
            "monitoring_report",
        },
        parameters={"params:monitoring", "params:team"},
        namespace="monitoring",
    )
