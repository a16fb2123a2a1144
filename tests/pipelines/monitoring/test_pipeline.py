"""The monitoring pipeline on an in-memory catalog."""

from __future__ import annotations

import pytest
from helpers import evaluation_rows, prediction_log, run_slice

from stock_mlops.core.params import MonitoringParams
from stock_mlops.pipelines.monitoring import create_pipeline

pytestmark = pytest.mark.slow


def test_monitoring_slice_writes_report_and_summary(small_prices, small_features):
    outputs = run_slice(
        create_pipeline(),
        {
            "features": small_features,
            "evaluation_predictions": evaluation_rows(small_features),
            "predictions": prediction_log(small_features, "2023-06-30"),
            "prices": small_prices,
            "params:monitoring": MonitoringParams(current_sessions=40, reference_sessions=120),
            "params:team": "red",
        },
        keep=("monitoring_summary", "prediction_outcomes"),
    )
    assert "Predicted against realised" in outputs["monitoring_report"]
    assert outputs["monitoring_summary"]["reference_rows"] > 0
    # The outcome table a user would inspect is a catalog entry of its own.
    assert {"symbol", "date", "origin", "actual_return"} <= set(outputs["prediction_outcomes"])
