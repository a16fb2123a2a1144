"""Chronological splits by target date and the baselines fitted on training rows only."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from stock_mlops.core import calendar
from stock_mlops.core.params import SplitParams, WalkForwardParams, WindowParams
from stock_mlops.pipelines.training import baselines
from stock_mlops.pipelines.training.splits import (
    fixed_fold,
    labelled_rows,
    split_rows,
    walk_forward_folds,
    window_fold,
)


@pytest.fixture
def parts(small_features):
    fold = fixed_fold(
        SplitParams(train_end=dt.date(2021, 6, 30), validation_end=dt.date(2022, 6, 30))
    )
    return split_rows(labelled_rows(small_features), fold)


def test_holdout_split_is_chronological_by_target_date(parts, small_features):
    assert parts["train"]["target_date"].max() <= pd.Timestamp("2021-06-30")
    assert parts["validation"]["target_date"].min() > pd.Timestamp("2021-06-30")
    assert parts["validation"]["target_date"].max() <= pd.Timestamp("2022-06-30")
    # Without a gate_end, the gate is the six months after validation_end.
    assert parts["gate"]["target_date"].min() > pd.Timestamp("2022-06-30")
    assert parts["gate"]["target_date"].max() <= pd.Timestamp("2022-12-30")
    assert parts["test"]["target_date"].min() > pd.Timestamp("2022-12-30")
    # The row dated on train_end predicts the next session, so it is not a training row.
    assert pd.Timestamp("2021-06-30") not in set(parts["train"]["date"])
    # Every labelled row lands in exactly one part.
    assert sum(len(p) for p in parts.values()) == len(labelled_rows(small_features))


def test_split_dates_out_of_order_are_rejected():
    with pytest.raises(ValueError, match="train_end must be before validation_end"):
        SplitParams(train_end=dt.date(2022, 1, 1), validation_end=dt.date(2021, 1, 1))
    with pytest.raises(ValueError, match="validation_end must be before gate_end"):
        SplitParams(
            train_end=dt.date(2020, 1, 1),
            validation_end=dt.date(2021, 1, 1),
            gate_end=dt.date(2020, 6, 1),
        )


def test_a_window_counts_sessions_back_from_the_run_date(small_features):
    window = WindowParams(
        validation_sessions=60, gate_sessions=40, test_sessions=20, train_sessions=250
    )
    as_of = pd.Timestamp("2023-06-30")
    fold = window_fold(window, as_of, pd.Timestamp("2019-01-02"))
    parts = split_rows(labelled_rows(small_features), fold)
    sessions = calendar.sessions_between(pd.Timestamp("2019-01-02"), as_of)
    per_symbol = {
        name: part.groupby("symbol").size().unique().tolist() for name, part in parts.items()
    }
    assert per_symbol == {"train": [250], "validation": [60], "gate": [40], "test": [20]}
    assert parts["test"]["target_date"].max() == as_of == sessions[-1]
    assert parts["gate"]["target_date"].max() == sessions[-21]
    # Nothing after the run date is used, even though the features go on to 2023-12.
    assert (labelled_rows(small_features)["target_date"] > as_of).any()


def test_a_window_longer_than_the_data_is_refused():
    window = WindowParams(validation_sessions=500, gate_sessions=500, test_sessions=500)
    with pytest.raises(ValueError, match="training.window needs 1560 sessions"):
        window_fold(window, pd.Timestamp("2023-06-30"), pd.Timestamp("2019-01-02"))


def test_walk_forward_folds_expand_yearly():
    folds = walk_forward_folds(
        WalkForwardParams(first_test_year=2020, validation_months=6), pd.Timestamp("2022-05-01")
    )
    assert [f.name for f in folds] == ["2020", "2021", "2022"]
    assert folds[0].validation_end == pd.Timestamp("2019-12-31")
    assert folds[0].train_end == pd.Timestamp("2019-06-30")
    assert folds[1].train_end > folds[0].train_end  # expanding window


def test_naive_forecast_is_the_last_close(parts):
    rows = parts["test"]
    assert baselines.naive_last_close(rows).equals(rows["close"].astype(float))


def test_drift_uses_training_returns_only(parts):
    rows = parts["test"]
    before = baselines.mean_drift(parts["train"], rows)
    shocked = rows.assign(target_return_1d=rows["target_return_1d"] * 100)
    assert baselines.mean_drift(parts["train"], shocked).equals(before)
    mean = parts["train"].groupby("symbol")["target_return_1d"].mean()
    expected = rows["close"] * (1 + rows["symbol"].map(mean))
    pd.testing.assert_series_equal(before, expected, check_names=False)


@pytest.mark.parametrize("scope", ["per_symbol", "pooled"])
def test_ridge_ignores_evaluation_targets(parts, scope):
    rows = parts["test"]
    inputs = ["log_return_1d", "rsi_14"]
    first = baselines.ridge(parts["train"], rows, inputs, "target_return_1d", 1.0, scope)
    leaked = rows.assign(target_return_1d=0.5, target_close_1d=1.0)
    second = baselines.ridge(parts["train"], leaked, inputs, "target_return_1d", 1.0, scope)
    pd.testing.assert_series_equal(first, second)
    assert first.notna().all()
