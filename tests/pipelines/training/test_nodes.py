"""Training nodes: real (one-epoch) Ludwig training, honest evaluation, the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core import metrics as M
from stock_mlops.core.params import TrainingParams
from stock_mlops.pipelines.training.nodes import (
    compute_evaluation_metrics,
    plan_training,
    predict_out_of_sample,
    register_forecaster,
    train_forecaster,
    train_walk_forward_models,
)
from stock_mlops.pipelines.training.planning import TrainingPlan
from stock_mlops.pipelines.training.splits import Fold

BAND = 0.001
# A plan that trains (the metric computation only asks whether it does).
PLAN = TrainingPlan(
    due=True,
    reason="test",
    run_date=pd.Timestamp("2023-12-29"),
    fold=Fold("holdout", pd.Timestamp("2021-06-30"), pd.Timestamp("2022-06-30")),
    ludwig_config_sha256="c",
    training_params_sha256="p",
)


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
        plan = plan_training(small_features, tiny_forecaster["config"], params, None)
        train_forecaster(small_features, tiny_forecaster["config"], params, "test", plan)


def test_registration_carries_the_stored_model_and_the_training_tags(tiny_forecaster):
    handle = tiny_forecaster["handle"]
    tags = {**tiny_forecaster["tags"], "mlflow.runName": "not copied"}
    registration = register_forecaster(handle, tags, tiny_forecaster["plan"])
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
        tiny_forecaster["plan"],
    )


def test_every_model_is_scored_on_the_same_rows(evaluation):
    keys = {
        model: set(map(tuple, rows[["symbol", "date", "split"]].astype(str).to_numpy()))
        for model, rows in evaluation.groupby("model")
    }
    assert set(keys) == {"ludwig", "naive_last_close", "mean_drift", "ridge"}
    assert len({frozenset(k) for k in keys.values()}) == 1
    assert (evaluation["date"] > pd.Timestamp("2021-06-30")).all()
    assert set(evaluation["split"]) == {"validation", "gate", "test"}


def test_metrics_come_from_evaluation_predictions_only(evaluation, small_features):
    metrics, flat = compute_evaluation_metrics(evaluation, small_features, PLAN)
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
    metrics, flat = compute_evaluation_metrics(evaluation, small_features, PLAN)
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
    metrics, _ = compute_evaluation_metrics(evaluation, small_features, PLAN)
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
    plan = plan_training(small_features, tiny_forecaster["config"], params, None)
    models = train_walk_forward_models(small_features, config, params, plan)
    assert set(models) == {"2022", "2023"}
    evaluation = predict_out_of_sample(
        tiny_forecaster["handle"], models, small_features, config, params, BAND, plan
    )
    metrics, _ = compute_evaluation_metrics(evaluation, small_features, plan)
    assert set(metrics["ludwig"]["walk_forward"]) == {"2022", "2023"}
    fold = evaluation[(evaluation["fold"] == "2022") & (evaluation["model"] == "ludwig")]
    assert fold["date"].dt.year.eq(2022).all()


def test_walk_forward_models_are_not_trained_in_holdout_mode(
    small_features, training_params, tiny_forecaster
):
    assert (
        train_walk_forward_models(small_features, {}, training_params, tiny_forecaster["plan"])
        == {}
    )


def test_evaluation_fails_clearly_when_the_split_leaves_no_rows(tiny_forecaster, small_features):
    params = with_changes(
        tiny_forecaster["params"],
        split={"train_end": "2010-01-01", "validation_end": "2011-01-01"},
    )
    with pytest.raises(ValueError, match="no train rows"):
        plan = plan_training(small_features, tiny_forecaster["config"], params, None)
        predict_out_of_sample(
            tiny_forecaster["handle"],
            {},
            small_features,
            tiny_forecaster["config"],
            params,
            BAND,
            plan,
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
    metrics, _ = compute_evaluation_metrics(rows, history, PLAN)
    # Three calls (flat is not a call): two right, one wrong.
    assert metrics["ludwig"]["directional_calls"] == 3
    assert metrics["ludwig"]["directional_accuracy"] == pytest.approx(2 / 3)
    assert "mae" not in metrics["ludwig"]


def test_one_symbols_task_scores_its_rows_and_baselines_as_the_whole_frame_does(
    tiny_forecaster, small_features, training_params
):
    # With the dask executor each symbol's task fits its baselines on that symbol's training
    # rows only; per-symbol baselines must not notice the difference.
    from conftest import TINY_LUDWIG_CONFIG

    from stock_mlops.pipelines.training.nodes import _fold_parts, score_rows, score_symbol

    model, plan = tiny_forecaster["model"], tiny_forecaster["plan"]
    parts = _fold_parts(small_features, plan.fold)
    train, splits = parts["train"], {s: parts[s] for s in ("validation", "gate", "test")}
    stacked = pd.concat(splits.values(), keys=list(splits), names=["split", "row"])
    together = pd.concat(
        {
            s: score_rows(model, rows, training_params, (train, TINY_LUDWIG_CONFIG))
            for s, rows in splits.items()
        },
        names=["split", "row"],
    )
    assert list(together.columns) == ["prediction", "naive_last_close", "mean_drift", "ridge"]
    assert together.notna().all().all()
    for symbol, rows in stacked.groupby("symbol"):
        own_train = train[train["symbol"] == symbol]
        alone = score_symbol(
            model.only(symbol), rows, training_params, (own_train, TINY_LUDWIG_CONFIG)
        )
        expected = together.loc[rows.index]
        pd.testing.assert_frame_equal(
            alone.drop(columns="prediction"), expected.drop(columns="prediction")
        )
        assert (alone["prediction"] - expected["prediction"]).abs().max() <= 1e-6
