"""Monitoring on real data for the tests: every monitoring node for one run date, in order.

evidently takes seconds to import and to run, so the tests use small windows: 20 current
sessions against a training window of 2019-2021.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from helpers import evaluation_rows, prediction_log

from stock_mlops.core.params import FeatureEngineeringParams, MonitoringParams
from stock_mlops.pipelines.feature_engineering.nodes import describe_features
from stock_mlops.pipelines.monitoring import nodes

PARAMS = MonitoringParams(current_sessions=20, reference_sessions=60)
CARD = {"train_start": "2019-06-03", "train_end": "2021-06-30"}


def monitor(
    features, prices, kinds, run_date: str | None, card=CARD, params=PARAMS, team="red"
) -> SimpleNamespace:
    """Every monitoring node for one run date, in pipeline order."""
    as_of = nodes.monitoring_date(features, run_date)
    drift_ref, drift_cur, drift_window = nodes.drift_windows(features, kinds, card, params, as_of)
    outcomes = nodes.prediction_outcomes(
        evaluation_rows(features), prediction_log(features, "2023-06-30"), prices, team
    )
    quality_ref, quality_cur, quality_window = nodes.quality_windows(outcomes, params, as_of)
    drift = nodes.drift_report(drift_ref, drift_cur, drift_window, params, team)
    quality = nodes.quality_report(quality_ref, quality_cur, quality_window, params, team)
    alert = nodes.monitoring_alert(drift, quality, drift_window, team)
    summary, metrics = nodes.summarise_monitoring(
        drift, quality, alert, drift_window, quality_window
    )
    return SimpleNamespace(
        as_of=dt.date.fromisoformat(as_of),
        outcomes=outcomes,
        drift_window=drift_window,
        quality_window=quality_window,
        drift=drift,
        quality=quality,
        alert=alert,
        summary=summary,
        metrics=metrics,
        team=team,
    )


def feature_kinds() -> dict[str, str]:
    """The registry's kinds of the default features."""
    return describe_features(FeatureEngineeringParams())
