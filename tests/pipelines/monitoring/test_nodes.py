"""Monitoring nodes on real data: which features drift is measured on, against which window,
predictions joined to outcomes by date, the evidently tests and the alert they raise."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from helpers import evaluation_rows as _evaluation
from helpers import prediction_log as _log
from monitoring_helpers import CARD, PARAMS, feature_kinds

from stock_mlops.core.params import MonitoringParams, ParameterError
from stock_mlops.pipelines.monitoring import reports
from stock_mlops.pipelines.monitoring.nodes import (
    drift_windows,
    monitoring_alert,
    monitoring_date,
    prediction_outcomes,
    quality_report,
    quality_windows,
)

SCALE_FREE = [
    "rsi_14",
    "log_return_1d",
    "log_return_5d",
    "log_return_20d",
    "volatility_20",
    "volume_zscore_20",
]
AS_OF = "2023-12-29"


def _windows(features, card=CARD, params=PARAMS, as_of=AS_OF):
    return drift_windows(features, feature_kinds(), card, params, as_of)


# ------------------------------------------------------------------------------ features
def test_drift_is_measured_on_the_scale_free_kinds_only(small_features):
    reference, current, window = _windows(small_features)
    assert window["columns"] == SCALE_FREE
    assert list(current.columns) == ["symbol", "date", *SCALE_FREE]
    assert set(window["kinds"].values()) == {"return", "oscillator", "zscore", "volatility"}
    # Price levels, MACD in price units, OBV and calendar fields are not monitored.
    for column in ("close", "sma_10", "bb_upper_20_2", "macd_12_26_9", "obv", "month"):
        assert column not in reference.columns


def test_monitored_kinds_are_a_parameter(small_features):
    params = MonitoringParams.parse({**PARAMS.model_dump(), "drift": {"feature_kinds": ["return"]}})
    _, _, window = _windows(small_features, params=params)
    assert window["columns"] == ["log_return_1d", "log_return_5d", "log_return_20d"]


def test_an_unknown_kind_is_refused_when_parameters_are_read():
    with pytest.raises(ParameterError, match=r"monitoring\.drift\.feature_kinds\.0"):
        MonitoringParams.parse({"drift": {"feature_kinds": ["momentum"]}}, "monitoring")


def test_kinds_without_a_feature_column_are_an_error(small_features):
    params = MonitoringParams.parse({**PARAMS.model_dump(), "drift": {"feature_kinds": ["zscore"]}})
    no_zscore = small_features.drop(columns=["volume_zscore_20"])
    with pytest.raises(ValueError, match="no feature column has a kind"):
        _windows(no_zscore, params=params)


# ------------------------------------------------------------------------------- windows
def test_reference_is_the_deployed_models_training_window(small_features):
    reference, current, window = _windows(small_features)
    assert window["reference_source"] == "training_window"
    assert reference["date"].min() >= pd.Timestamp("2019-06-03")
    assert reference["date"].max() == pd.Timestamp("2021-06-30")
    assert current["date"].nunique() == 20 and current["date"].max() == pd.Timestamp(AS_OF)
    assert window["reference"]["rows"] == len(reference)
    assert "training window (2019-06-03 to 2021-06-30)" in window["reference_note"]


def test_without_a_model_card_the_sessions_before_are_the_reference(small_features):
    reference, current, window = _windows(small_features, card=None)
    assert window["reference_source"] == "sessions_before_current"
    assert window["reference_note"].startswith("no deployed model card yet")
    assert reference["date"].nunique() == 60
    before = sorted(small_features["date"][small_features["date"] < current["date"].min()])
    assert reference["date"].max() == before[-1]


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ({"train_start": None, "train_end": None}, "gives no training end"),
        # Five sessions (Thanksgiving is closed) are too few to compare with.
        ({"train_start": "2023-11-20", "train_end": "2023-11-27"}, "has 5 sessions"),
    ],
)
def test_an_unusable_training_window_falls_back_and_says_why(small_features, card, reason):
    reference, _, window = _windows(small_features, card=card)
    assert window["reference_source"] == "sessions_before_current"
    assert reason in window["reference_note"]
    assert reference["date"].nunique() == 60


def test_a_training_window_reaching_into_the_current_one_is_cut_before_it(small_features):
    reference, current, window = _windows(
        small_features, card={"train_start": None, "train_end": "2024-06-30"}
    )
    assert window["reference_source"] == "training_window"
    assert reference["date"].max() < current["date"].min()
    assert reference["date"].min() == small_features["date"].min()  # open start: all history
    assert window["reference_note"].endswith("up to the current window")


def test_a_card_date_that_is_not_a_date_is_named(small_features):
    with pytest.raises(ValueError, match=r"deployed_model_card\.train_end must be an ISO date"):
        _windows(small_features, card={"train_start": None, "train_end": "last year"})


def test_windows_see_nothing_after_the_run_date(small_features):
    as_of = monitoring_date(small_features, "2023-06-30")
    reference, current, window = _windows(small_features, as_of=as_of)
    assert current["date"].max() == pd.Timestamp("2023-06-30")
    assert window["run_date"] == "2023-06-30"
    assert monitoring_date(small_features, None) == AS_OF


def test_a_run_date_before_the_data_is_an_error(small_features):
    with pytest.raises(ValueError, match="before the first feature date"):
        monitoring_date(small_features, "2001-01-02")


def test_drift_needs_enough_history_when_falling_back(small_features):
    params = MonitoringParams(current_sessions=500, reference_sessions=1500)
    with pytest.raises(ValueError, match="monitoring needs 2000 sessions"):
        _windows(small_features, card=None, params=params)


# ------------------------------------------------------------------------------ outcomes
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
    assert live["actual_close"].to_numpy() == pytest.approx(actual.loc[live.index].to_numpy())
    assert live["predicted_close"].to_numpy() == pytest.approx(1.01 * last.loc[live.index])
    assert (live["date"] == pd.Timestamp("2023-07-03")).all()


def test_out_of_sample_outcomes_carry_the_closes(small_prices, small_features):
    evaluation = _evaluation(small_features)
    outcomes = prediction_outcomes(
        evaluation, _log(small_features, "2023-06-30")[0:0], small_prices, "red"
    )
    row = outcomes[(outcomes["symbol"] == "MSFT") & (outcomes["date"] == "2023-03-01")].iloc[0]
    close = small_prices.set_index(["symbol", "date"])["close"]
    assert row["actual_close"] == pytest.approx(close[("MSFT", pd.Timestamp("2023-03-01"))])
    assert row["predicted_close"] == pytest.approx(1.001 * row["actual_close"])
    assert row["predicted_return"] == pytest.approx(
        row["predicted_close"] / close[("MSFT", pd.Timestamp("2023-02-28"))] - 1
    )


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
    reference, current, window = quality_windows(outcomes, PARAMS, AS_OF)
    assert set(reference["origin"]) == {"out_of_sample_validation"}
    assert current["date"].nunique() == 20
    assert current["date"].min() > reference["date"].max()
    assert window["current"]["end"] == AS_OF and window["reference"]["end"] == "2022-12-30"


def test_quality_windows_need_an_outcome(small_prices, small_features):
    outcomes = prediction_outcomes(
        _evaluation(small_features), _log(small_features, "2023-06-30")[0:0], small_prices, "red"
    )
    with pytest.raises(ValueError, match="no prediction outcome is known up to 2021-01-04"):
        quality_windows(outcomes, PARAMS, "2021-01-04")


def test_direction_counts_calls_only_and_the_base_rate_counts_moves(small_prices, small_features):
    outcomes = prediction_outcomes(
        _evaluation(small_features), _log(small_features, "2023-06-30")[0:0], small_prices, "red"
    ).head(6)
    outcomes = outcomes.assign(
        predicted_return=[0.01, -0.02, 0.0, 0.01, 0.03, -0.01],
        actual_return=[0.02, 0.01, 0.01, 0.0, -0.01, -0.02],
    )
    frame = reports.quality_frame(outcomes)
    # no call when the prediction or the outcome is zero
    np.testing.assert_array_equal(
        frame[reports.DIRECTION_CORRECT], [1.0, 0.0, np.nan, np.nan, 0.0, 1.0]
    )
    np.testing.assert_array_equal(
        frame[reports.ALWAYS_UP_CORRECT], [1.0, 1.0, 1.0, np.nan, 0.0, 0.0]
    )
    assert frame[reports.NAIVE_ERROR].tolist() == pytest.approx([2, 1, 1, 0, 1, 2])


# ------------------------------------------------------------- evidently reports and tests
@pytest.mark.slow
def test_the_alert_holds_one_entry_per_test(monitoring_run):
    alert = monitoring_run.alert
    names = [t["name"] for t in alert["tests"]]
    assert names == [
        "drift_share",
        *[f"feature_drift:{c}" for c in SCALE_FREE],
        "mae_return_vs_naive",
        "directional_accuracy_vs_base_rate",
    ]
    tests = {t["name"]: t for t in alert["tests"]}
    assert {k for k, t in tests.items() if t["critical"]} == {"drift_share", "mae_return_vs_naive"}
    for entry in alert["tests"]:
        assert entry["status"] in {"SUCCESS", "FAIL", "WARNING"}
        assert isinstance(entry["value"], float) and isinstance(entry["threshold"], float)
    drift = tests["drift_share"]
    drifted = sum(tests[f"feature_drift:{c}"]["status"] == "FAIL" for c in SCALE_FREE)
    assert drift["value"] == pytest.approx(drifted / len(SCALE_FREE))
    assert drift["status"] == ("FAIL" if drift["value"] >= 0.5 else "SUCCESS")
    assert drift["threshold"] == 0.5 and drift["condition"] == "lt"

    # The forecaster of the fixtures is off by 0.1% of the close: far better than no change.
    start = monitoring_run.quality_window["current"]["start"]
    current = monitoring_run.outcomes[monitoring_run.outcomes["date"] >= start]
    assert current["date"].nunique() == 20
    naive_pct = 100 * current["actual_return"].abs().mean()
    mae = tests["mae_return_vs_naive"]
    assert mae["status"] == "SUCCESS" and mae["unit"] == "percent"
    assert mae["threshold"] == pytest.approx(1.1 * naive_pct)
    assert mae["value"] == pytest.approx(0.1, rel=0.05)
    assert monitoring_run.alert["alert"] == (drift["status"] == "FAIL")
    assert alert["run_date"] == "2023-12-29" and alert["drift_reference"]["source"] == (
        "training_window"
    )


@pytest.mark.slow
def test_a_model_worse_than_the_naive_forecast_raises_the_alert(monitoring_run, small_features):
    strict = MonitoringParams.parse(
        {**PARAMS.model_dump(), "quality": {"max_mae_ratio_to_naive": 0.01}}
    )
    outcomes = monitoring_run.outcomes
    reference, current, window = quality_windows(outcomes, strict, "2023-12-29")
    quality = quality_report(reference, current, window, strict, "red")
    alert = monitoring_alert(monitoring_run.drift, quality, monitoring_run.drift_window, "red")
    mae = next(t for t in alert["tests"] if t["name"] == "mae_return_vs_naive")
    assert mae["status"] == "FAIL" and mae["value"] > mae["threshold"]
    assert alert["alert"] is True and "mae_return_vs_naive" in alert["failed"]


@pytest.mark.slow
def test_summary_and_mlflow_metrics_have_readable_names(monitoring_run):
    summary, metrics = monitoring_run.summary, monitoring_run.metrics
    assert {"drift_share", "mae_return", "directional_accuracy", "always_up_rate"} <= set(metrics)
    assert all(set(m) == {"value", "step"} for m in metrics.values())
    assert metrics["mae_return"]["value"] == pytest.approx(0.001, rel=0.05)
    assert summary["mae_ratio_to_naive"] == pytest.approx(
        summary["mae_return"] / summary["naive_mae_return"]
    )
    assert summary["mae_ratio_to_naive"] < 0.2
    assert summary["quality_windows"]["current"]["sessions"] == 20
    assert summary["always_up_rate"] == pytest.approx(
        _up_rate(monitoring_run.outcomes, summary["quality_windows"]["current"]["start"])
    )
    assert summary["alert"] == monitoring_run.alert["alert"]
    assert metrics["alert"]["value"] == float(summary["alert"])


def _up_rate(outcomes: pd.DataFrame, start: str) -> float:
    window = outcomes[outcomes["date"] >= start]["actual_return"]
    return float((window[window != 0] > 0).mean())


@pytest.mark.slow
def test_snapshots_are_dated_by_the_run_date(monitoring_run):
    for snapshot in (monitoring_run.drift, monitoring_run.quality):
        model = snapshot.to_snapshot_model()
        assert model.timestamp == dt.datetime(2023, 12, 29)
        assert model.metadata["run_date"] == "2023-12-29"
