"""Wiring of the monitoring pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.monitoring.nodes import (
    drift_report,
    drift_windows,
    monitoring_alert,
    monitoring_date,
    prediction_outcomes,
    quality_report,
    quality_windows,
    render_monitoring_report,
    summarise_monitoring,
    workspace_run,
)


def create_pipeline(**kwargs) -> Pipeline:
    """features + predictions + realised prices -> evidently reports, alert, summary, page and
    the team's evidently workspace."""
    return Pipeline(
        [
            Node(
                func=monitoring_date,
                inputs={"features": "features", "run_date": "params:run_date"},
                outputs="as_of",
                name="monitoring_date_node",
            ),
            Node(
                func=drift_windows,
                inputs={
                    "features": "features",
                    "feature_kinds": "feature_kinds",
                    "deployed_model_card": "deployed_model_card",
                    "params": "params:monitoring",
                    "as_of": "as_of",
                },
                outputs=["drift_reference", "drift_current", "drift_window"],
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
                inputs={
                    "outcomes": "prediction_outcomes",
                    "params": "params:monitoring",
                    "as_of": "as_of",
                },
                outputs=["quality_reference", "quality_current", "quality_window"],
                name="quality_windows_node",
            ),
            Node(
                func=drift_report,
                inputs={
                    "reference": "drift_reference",
                    "current": "drift_current",
                    "drift_window": "drift_window",
                    "params": "params:monitoring",
                    "team": "params:team",
                },
                outputs="drift_snapshot",
                name="drift_report_node",
            ),
            Node(
                func=quality_report,
                inputs={
                    "reference": "quality_reference",
                    "current": "quality_current",
                    "quality_window": "quality_window",
                    "params": "params:monitoring",
                    "team": "params:team",
                },
                outputs="quality_snapshot",
                name="quality_report_node",
            ),
            Node(
                func=monitoring_alert,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "quality_snapshot": "quality_snapshot",
                    "drift_window": "drift_window",
                    "team": "params:team",
                },
                outputs="monitoring_alert",
                name="monitoring_alert_node",
            ),
            Node(
                func=summarise_monitoring,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "quality_snapshot": "quality_snapshot",
                    "monitoring_alert": "monitoring_alert",
                    "drift_window": "drift_window",
                    "quality_window": "quality_window",
                },
                outputs=["monitoring_summary", "monitoring_metrics_mlflow"],
                name="summarise_monitoring_node",
            ),
            Node(
                func=render_monitoring_report,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "quality_snapshot": "quality_snapshot",
                    "monitoring_alert": "monitoring_alert",
                    "drift_window": "drift_window",
                    "quality_window": "quality_window",
                    "team": "params:team",
                },
                outputs="monitoring_report",
                name="render_monitoring_report_node",
            ),
            Node(
                func=workspace_run,
                inputs={
                    "drift_snapshot": "drift_snapshot",
                    "quality_snapshot": "quality_snapshot",
                    "drift_window": "drift_window",
                    "team": "params:team",
                },
                outputs="monitoring_workspace",
                name="workspace_run_node",
            ),
        ],
        inputs={
            "features",
            "feature_kinds",
            "deployed_model_card",
            "evaluation_predictions",
            "predictions",
            "prices",
        },
        outputs={
            "prediction_outcomes",
            "monitoring_alert",
            "monitoring_summary",
            "monitoring_metrics_mlflow",
            "monitoring_report",
            "monitoring_workspace",
        },
        parameters={"params:monitoring", "params:team", "params:run_date"},
        namespace="monitoring",
    )
