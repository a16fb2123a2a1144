"""Training nodes: real (one-epoch) Ludwig training, honest evaluation, the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core import metrics as M
from stock_mlops.core.params import TrainingParams
from stock_mlops.pipelines.training.nodes import (
    compute_evaluation_metrics,
    decide_promotion,
    predict_out_of_sample,
    register_forecaster,
    request_alias_update,
    score_champion,
    train_forecaster,
    train_walk_forward_models,
)

BAND = 0.001


def with_changes(params: TrainingParams, **changes) -> TrainingParams:
    """A copy of validated parameters with some sections replaced (validated again)."""
    return TrainingParams.parse({**params.model_dump(), **changes})


pytestmark = pytest.mark.slow


def test_forecaster_predicts_every_trained_symbol(tiny_forecaster, small_features):
    model = tiny_forecaster["model"]
    assert model.symbols == ["AAPL", "MSFT", "NVDA"]
    rows = small_features.groupby("symbol").tail(2)
    predicted = model.predict(None, rows)
    assert len(predicted) == len(rows)
    assert predicted["prediction"].notna().all()
    # Routing by symbol: shuffling the rows shuffles the answers with them.
    shuffled = rows.sample(frac=1.0, random_state=3)
    again = model.predict(None, shuffled)
    pd.testing.assert_series_equal(
        again["prediction"].sort_index(), predicted["prediction"].sort_index()
    )


def test_training_records_curves_tags_and_hashes(tiny_forecaster):
    curves, tags = tiny_forecaster["curves"], tiny_forecaster["tags"]
    assert {"ludwig.AAPL.train_loss", "ludwig.AAPL.validation_loss"} <= set(curves)
    assert curves["ludwig.AAPL.train_loss"][0]["step"] == 1
    assert len(tags["training_data_sha256"]) == 64
    assert tiny_forecaster["model"].metadata["train_end"] == "2021-06-30"


def test_training_fails_clearly_without_validation_rows(small_features, tiny_forecaster):
    params = with_changes(
        tiny_forecaster["params"],
        split={"train_end": "2030-01-01", "validation_end": "2031-01-01"},
    )
    with pytest.raises(ValueError, match="no validation rows"):
        train_forecaster(small_features, tiny_forecaster["config"], params, "test")


def test_registration_carries_the_stored_model_and_the_training_tags(tiny_forecaster):
    handle = tiny_forecaster["handle"]
    tags = {**tiny_forecaster["tags"], "mlflow.runName": "not copied"}
    registration = register_forecaster(handle, tags)
    assert registration.model is handle
    assert (
        registration.tags["training_data_sha256"] == tiny_forecaster["tags"]["training_data_sha256"]
    )
    assert registration.tags["local_version"] == handle.version
    assert "mlflow.runName" not in registration.tags


@pytest.fixture(scope="module")
def evaluation(tiny_forecaster, small_features):
    return predict_out_of_sample(
        tiny_forecaster["handle"],
        {},
        small_features,
        tiny_forecaster["config"],
        tiny_forecaster["params"],
        BAND,
    )


def test_every_model_is_scored_on_the_same_rows(evaluation):
    keys = {
        model: set(map(tuple, rows[["symbol", "date", "split"]].astype(str).to_numpy()))
        for model, rows in evaluation.groupby("model")
    }
    assert set(keys) == {"ludwig", "naive_last_close", "mean_drift", "ridge"}
    assert len({frozenset(k) for k in keys.values()}) == 1
    assert (evaluation["date"] > pd.Timestamp("2021-06-30")).all()
    assert set(evaluation["split"]) == {"validation", "test"}


def test_metrics_come_from_evaluation_predictions_only(evaluation, small_features):
    metrics, flat = compute_evaluation_metrics(evaluation, small_features)
    test_rows = evaluation[(evaluation["model"] == "ridge") & (evaluation["split"] == "test")]
    assert metrics["ridge"]["mae"] == pytest.approx(
        (test_rows["prediction"] - test_rows["actual"]).abs().mean()
    )
    naive = evaluation[
        (evaluation["model"] == "naive_last_close") & (evaluation["split"] == "test")
    ]
    naive_mae = (naive["prediction"] - naive["actual"]).abs().mean()
    assert metrics["ridge"]["mae_ratio_vs_naive"] == pytest.approx(
        metrics["ridge"]["mae"] / naive_mae
    )
    assert metrics["ridge"]["mase"] == metrics["ridge"]["mae_ratio_vs_naive"]  # the old name
    low, high = M.wilson_interval(
        round(metrics["ridge"]["directional_accuracy"] * metrics["ridge"]["directional_calls"]),
        int(metrics["ridge"]["directional_calls"]),
    )
    assert metrics["ridge"]["directional_accuracy_wilson_low"] == pytest.approx(low)
    assert metrics["ridge"]["directional_accuracy_wilson_high"] == pytest.approx(high)
    assert metrics["naive_last_close"]["directional_accuracy"] is None  # never calls a direction
    assert "validation" in metrics["ludwig"]
    assert flat["ridge.test.mae"]["value"] == pytest.approx(metrics["ridge"]["mae"])


def test_directional_accuracy_sits_beside_its_base_rate_with_date_intervals(
    evaluation, small_features
):
    metrics, flat = compute_evaluation_metrics(evaluation, small_features)
    ridge = metrics["ridge"]
    rows = evaluation[(evaluation["model"] == "ridge") & (evaluation["split"] == "test")]
    predicted = np.sign(rows["prediction"] / rows["last_close"] - 1)
    realised = np.sign(rows["actual"] / rows["last_close"] - 1)
    calls = (predicted != 0) & (realised != 0)
    assert ridge["directional_base_rate"] == pytest.approx((realised[calls] > 0).mean())
    assert ridge["directional_skill"] == pytest.approx(
        (ridge["directional_accuracy"] - ridge["directional_base_rate"])
        / (1 - ridge["directional_base_rate"])
    )
    # The interval resamples dates: three symbols a day are not three independent trials.
    assert ridge["bootstrap_dates"] == rows["date"].nunique()
    for name in ("directional_accuracy", "directional_skill", "information_coefficient"):
        assert ridge[f"{name}_low"] <= ridge[name] <= ridge[f"{name}_high"]
    assert ridge["daily_ic_days"] > 0 and ridge["daily_ic_t"] is not None
    assert flat["ridge.test.directional_base_rate"]["value"] == ridge["directional_base_rate"]


def test_hyndman_mase_is_scaled_by_the_training_periods_naive_error(evaluation, small_features):
    metrics, _ = compute_evaluation_metrics(evaluation, small_features)
    first = evaluation["date"].min()
    history = small_features[small_features["target_date"] < first]
    scale = history.groupby("symbol")["target_return_1d"].apply(lambda r: r.abs().mean())
    naive = evaluation[
        (evaluation["model"] == "naive_last_close") & (evaluation["split"] == "test")
    ]
    realised = (naive["actual"] / naive["last_close"] - 1).abs()
    expected = (realised / naive["symbol"].map(scale)).mean()
    # The naive forecast's own MASE is not 1: the test period is not the training period.
    assert metrics["naive_last_close"]["mase_hyndman"] == pytest.approx(expected)
    assert metrics["naive_last_close"]["mae_ratio_vs_naive"] == pytest.approx(1.0)


def test_walk_forward_reports_yearly_folds(tiny_forecaster, small_features):
    params = with_changes(
        tiny_forecaster["params"],
        # Pooled: one fresh model per fold keeps this test short.
        scope="pooled",
        evaluation_mode="walk_forward",
        walk_forward={"first_test_year": 2022, "last_test_year": 2023, "validation_months": 6},
    )
    config = tiny_forecaster["config"]
    models = train_walk_forward_models(small_features, config, params)
    assert set(models) == {"2022", "2023"}
    evaluation = predict_out_of_sample(
        tiny_forecaster["handle"], models, small_features, config, params, BAND
    )
    metrics, _ = compute_evaluation_metrics(evaluation, small_features)
    assert set(metrics["ludwig"]["walk_forward"]) == {"2022", "2023"}
    fold = evaluation[(evaluation["fold"] == "2022") & (evaluation["model"] == "ludwig")]
    assert fold["date"].dt.year.eq(2022).all()


def _metrics(candidate: float, naive: float) -> dict:
    return {
        "ludwig": {"validation": {"mae_return": candidate}},
        "naive_last_close": {"validation": {"mae_return": naive}},
    }


REGISTERED = {"name": "stock_mlops_test", "version": 4}


def test_gate_promotes_a_model_that_beats_naive_and_champion(training_params):
    decision = decide_promotion(
        _metrics(0.010, 0.012), {"version": 3, "mae_return": 0.011}, REGISTERED, training_params
    )
    assert decision["promote"] is True
    assert decision["candidate_version"] == 4
    update = request_alias_update(decision)
    assert (update.candidate_version, update.promote) == ("4", True)


def test_walk_forward_models_are_not_trained_in_holdout_mode(small_features, training_params):
    assert train_walk_forward_models(small_features, {}, training_params) == {}


@pytest.mark.parametrize(
    ("candidate", "naive", "champion", "reason"),
    [
        (0.013, 0.012, None, "does not beat naive"),
        (0.011, 0.012, 0.010, "does not beat champion v3"),
    ],
)
def test_gate_refuses_a_model_that_does_not_earn_it(
    candidate, naive, champion, reason, training_params
):
    decision = decide_promotion(
        _metrics(candidate, naive),
        {"version": 3, "mae_return": champion},
        REGISTERED,
        training_params,
    )
    assert decision["promote"] is False
    assert reason in decision["reason"]
    update = request_alias_update(decision)
    assert update.promote is False and reason in update.reason


def test_no_champion_scores_nothing(small_features, training_params):
    assert score_champion(None, small_features, training_params)["mae_return"] is None


def test_champion_is_scored_on_this_runs_validation_rows(tiny_forecaster, small_features):
    handle = tiny_forecaster["handle"]  # a real stored model, loaded as the registry loads it
    score = score_champion(handle, small_features, tiny_forecaster["params"])
    assert score["version"] == handle.version
    assert np.isfinite(score["mae_return"]) and score["mae_return"] > 0


def test_evaluation_fails_clearly_when_the_split_leaves_no_rows(tiny_forecaster, small_features):
    params = with_changes(
        tiny_forecaster["params"],
        split={"train_end": "2010-01-01", "validation_end": "2011-01-01"},
    )
    with pytest.raises(ValueError, match="no train rows"):
        predict_out_of_sample(
            tiny_forecaster["handle"], {}, small_features, tiny_forecaster["config"], params, BAND
        )


def test_a_direction_classifier_is_scored_on_its_calls_only():
    rows = pd.DataFrame(
        {
            "model": "ludwig",
            "fold": "holdout",
            "split": "test",
            "symbol": "AAPL",
            "date": pd.bdate_range("2023-01-02", periods=4),
            "last_close": [100.0, 100.0, 100.0, 100.0],
            "prediction": np.nan,  # a classifier predicts no price
            "actual": [101.0, 99.0, 102.0, 98.0],
            "predicted_direction": ["up", "up", "up", "flat"],
        }
    )
    history = pd.DataFrame(
        {
            "symbol": "AAPL",
            "target_date": pd.bdate_range("2022-12-01", periods=5),
            "target_return_1d": [0.01, -0.01, 0.02, 0.0, -0.02],
        }
    )
    metrics, _ = compute_evaluation_metrics(rows, history)
    # Three calls (flat is not a call): two right, one wrong.
    assert metrics["ludwig"]["directional_calls"] == 3
    assert metrics["ludwig"]["directional_accuracy"] == pytest.approx(2 / 3)
    assert "mae" not in metrics["ludwig"]
