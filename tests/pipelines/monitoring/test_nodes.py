"""Monitoring: drift windows, predictions joined to outcomes by date, the evidently report."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import evaluation_rows as _evaluation
from helpers import prediction_log as _log

from stock_mlops.core.params import MonitoringParams
from stock_mlops.pipelines.monitoring.nodes import (
    drift_report,
    drift_windows,
    prediction_outcomes,
    quality_report,
    quality_windows,
    render_monitoring_report,
    summarise_monitoring,
)

PARAMS = MonitoringParams(current_sessions=40, reference_sessions=120)


def test_drift_windows_are_consecutive_and_sized(small_features):
    reference, current = drift_windows(small_features, PARAMS)
    assert len(current) == 40 * 3 and len(reference) == 120 * 3
    assert "target_close_1d" not in current.columns and "rsi_14" in current.columns


def test_drift_needs_enough_history(small_features):
    with pytest.raises(ValueError, match="monitoring needs 2000 sessions"):
        drift_windows(
            small_features, MonitoringParams(current_sessions=500, reference_sessions=1500)
        )


def test_outcomes_join_live_predictions_by_date_not_row(small_prices, small_features):
    evaluation = _evaluation(small_features)
    log = _log(small_features, "2023-06-30")
    # Shuffle the log: a row-aligned join (the predecessor's) would pair the wrong closes.
    outcomes = prediction_outcomes(
        evaluation, log.sample(frac=1, random_state=1), small_prices, "red"
    )
    live = outcomes[outcomes["origin"] == "live"].set_index("symbol")
    actual = small_prices[small_prices["date"] == "2023-07-03"].set_index("symbol")["close"]
    last = small_prices[small_prices["date"] == "2023-06-30"].set_index("symbol")["close"]
    expected = (actual / last - 1).loc[live.index]
    assert live["actual_return"].to_numpy() == pytest.approx(expected.to_numpy())
    assert (live["date"] == pd.Timestamp("2023-07-03")).all()


def test_other_teams_and_unrealised_predictions_are_ignored(small_prices, small_features):
    evaluation = _evaluation(small_features)
    log = pd.concat(
        [_log(small_features, "2023-12-29"), _log(small_features, "2023-06-30").assign(team="blue")]
    )
    outcomes = prediction_outcomes(evaluation, log, small_prices, "red")
    assert "live" not in set(outcomes["origin"])  # 2024-01-02 has no close yet; blue is not red


def test_quality_windows_compare_recent_with_validation(small_prices, small_features):
    outcomes = prediction_outcomes(
        _evaluation(small_features), _log(small_features, "2023-06-30")[0:0], small_prices, "red"
    )
    reference, current = quality_windows(outcomes, PARAMS)
    assert set(reference["origin"]) == {"out_of_sample_validation"}
    assert current["date"].nunique() == 40
    assert current["date"].min() > reference["date"].max()


@pytest.mark.slow
def test_report_renders_drift_and_quality(small_prices, small_features):
    drift_reference, drift_current = drift_windows(small_features, PARAMS)
    outcomes = prediction_outcomes(
        _evaluation(small_features), _log(small_features, "2023-06-30"), small_prices, "red"
    )
    quality_reference, quality_current = quality_windows(outcomes, PARAMS)
    drift = drift_report(drift_reference, drift_current)
    quality = quality_report(quality_reference, quality_current)
    summary, metrics = summarise_monitoring(
        drift, drift_reference, quality_reference, quality_current
    )
    html = render_monitoring_report(drift, quality, summary, "red")
    assert html.startswith("<!DOCTYPE html>") and "Feature drift" in html
    assert "evidently" in html.lower()
    assert summary["current_rows"] == 40 * 3
    # predictions are the outcome times 1.001, so the return error is 0.1% of actual/last.
    assert summary["current_mae_return"] == pytest.approx(0.001, rel=0.05)
    assert 0 <= summary["drifted_share"] <= 1
    assert metrics["monitoring.drifted_columns"]["value"] == summary["drifted_columns"]
