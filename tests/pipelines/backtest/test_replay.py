"""The fast replay equals the real one curve by curve, and the permutation test built on it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core import calendar
from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.pipelines.backtest import replay
from stock_mlops.pipelines.backtest.nodes import permutation_test, simulate

START, END = pd.Timestamp("2023-01-03"), pd.Timestamp("2023-06-30")


def rule(**changes: Any) -> TradingParams:
    local = {"initial_cash": 100_000.0, "fill_at": "next_open", "slippage_bps": 5.0}
    local.update(changes.pop("local", {}))
    if local["fill_at"] == "close":
        local["allow_close_fill"] = True
    return TradingParams.parse({"local": local, **changes})


def log_rows(
    prices: pd.DataFrame,
    predicted_return: np.ndarray | None = None,
    seed: int = 0,
    noise: float = 0.02,
) -> pd.DataFrame:
    """Log-shaped predictions for every symbol and day of the period: the realised return
    plus normal noise (or ``predicted_return``, in symbol then date order)."""
    frame = prices.sort_values(["symbol", "date"])
    following = frame.groupby("symbol")["close"].shift(-1)
    rows = frame.assign(next_close=following)
    rows = rows[(rows["date"] >= START) & (rows["date"] <= END)].dropna(subset=["next_close"])
    if predicted_return is None:
        realised = rows["next_close"] / rows["close"] - 1
        errors = np.random.default_rng(seed).normal(0, noise, len(rows))
        predicted_return = realised.to_numpy() + errors
    prediction = rows["close"].to_numpy() * (1 + predicted_return)
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "target_date": calendar.next_sessions(rows["date"]).to_numpy(),
            "last_close": rows["close"].to_numpy(),
            "prediction": prediction,
            "predicted_direction": np.where(predicted_return > 0, "up", "down"),
        }
    ).sort_values(["feature_date", "symbol"], kind="stable")


RULES = {
    "default": rule(),
    "close_with_costs_fractional": rule(
        threshold=0.0,
        fractional_shares=True,
        local={"fill_at": "close", "commission_bps": 10.0, "slippage_bps": 5.0},
    ),
    "buffer_and_max_weight": rule(
        threshold=0.002, risk={"min_cash_buffer": 0.05, "max_weight_per_symbol": 0.6}
    ),
    "small_account_whole_shares": rule(local={"initial_cash": 3_000.0, "commission_bps": 3.0}),
}


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_replay_equals_the_real_replay(small_prices: pd.DataFrame, name: str, seed: int):
    params = RULES[name]
    predictions = log_rows(small_prices, seed=seed)
    _, real = simulate(predictions, small_prices, params, "red")
    inputs = replay.prepare_replay(predictions, small_prices, params.risk.max_price_deviation)
    assert replay.fast_replay_blocker(params, len(inputs.symbols)) == ""
    fast = replay.fast_all_in_equity(inputs, params)
    np.testing.assert_allclose(fast, real["equity"].to_numpy(), rtol=1e-12, atol=1e-6)
    # A shuffle replayed both ways: the real rule on rebuilt predictions, the fast one on scores.
    shuffled = replay.permuted_scores(inputs, np.random.default_rng(seed))
    rebuilt = replay.predictions_with_scores(predictions, inputs, shuffled)
    _, real_shuffled = simulate(rebuilt, small_prices, params, "red")
    np.testing.assert_allclose(
        replay.fast_all_in_equity(inputs, params, shuffled),
        real_shuffled["equity"].to_numpy(),
        rtol=1e-12,
        atol=1e-6,
    )


def test_shuffles_keep_each_symbols_predictions_and_usable_days(small_prices: pd.DataFrame):
    inputs = replay.prepare_replay(log_rows(small_prices), small_prices, 0.2)
    shuffled = replay.permuted_scores(inputs, np.random.default_rng(3))
    assert (np.isfinite(shuffled) == inputs.usable).all()
    for j in range(len(inputs.symbols)):
        usable = inputs.usable[:, j]
        assert sorted(shuffled[usable, j]) == sorted(inputs.score[usable, j])
        assert not np.array_equal(shuffled[usable, j], inputs.score[usable, j])


def test_the_fast_replay_names_the_rules_it_does_not_cover():
    assert "sizing 'equal_weight'" in replay.fast_replay_blocker(
        rule(sizing="equal_weight", top_k=2), 3
    )
    assert "mode 'classification'" in replay.fast_replay_blocker(rule(mode="classification"), 3)
    assert "kill switch" in replay.fast_replay_blocker(rule(risk={"kill_switch": True}), 3)
    assert "max_orders_per_run=2" in replay.fast_replay_blocker(
        rule(risk={"max_orders_per_run": 2}), 3
    )


def evaluation(predictions: pd.DataFrame) -> pd.DataFrame:
    """The rows as ``evaluation_predictions`` holds them (test split, holdout fold)."""
    return predictions.assign(
        date=predictions["target_date"],
        model="ludwig",
        split="test",
        fold="holdout",
        actual=np.nan,
    )


def run_permutation(prices, predictions, params, backtest):
    _, equity = simulate(predictions, prices, params, "red")
    return permutation_test(evaluation(predictions), prices, equity, params, backtest, "red")


def test_a_model_that_knows_tomorrow_beats_every_shuffle(small_prices: pd.DataFrame):
    oracle = log_rows(small_prices, noise=0.0)
    backtest = BacktestParams(permutation={"samples": 60, "random_seed": 1})
    out = run_permutation(small_prices, oracle, rule(), backtest)
    assert out["method"] == "fast_all_in" and out["samples"] == 60
    assert out["share_at_least_as_good"] == 0.0
    assert out["p_value"] == pytest.approx(1 / 61)
    assert out["shuffled_sharpe_q95"] < out["sharpe"]


def test_the_permutation_share_is_seeded_and_counts_the_shuffles(small_prices: pd.DataFrame):
    rng = np.random.default_rng(4)
    noise = log_rows(small_prices)
    noise = log_rows(small_prices, rng.normal(0, 0.01, len(noise)))  # no skill at all
    params = rule()
    backtest = BacktestParams(permutation={"samples": 80, "random_seed": 5})
    out = run_permutation(small_prices, noise, params, backtest)
    assert out == run_permutation(small_prices, noise, params, backtest)
    other = run_permutation(
        small_prices, noise, params, BacktestParams(permutation={"samples": 80, "random_seed": 6})
    )
    assert other["share_at_least_as_good"] != out["share_at_least_as_good"]
    # Recount by hand: the same seed gives the same shuffles.
    inputs = replay.prepare_replay(noise, small_prices, 0.2)
    generator = np.random.default_rng(5)
    sharpes = []
    for _ in range(80):
        curve = replay.fast_all_in_equity(inputs, params, replay.permuted_scores(inputs, generator))
        daily = pd.Series(curve).pct_change().dropna()
        sharpes.append(daily.mean() / daily.std() * np.sqrt(252))
    at_least = sum(s >= out["sharpe"] for s in sharpes)
    assert out["share_at_least_as_good"] == pytest.approx(at_least / 80)
    assert out["p_value"] == pytest.approx((1 + at_least) / 81)
    assert 0.05 < out["share_at_least_as_good"] < 0.95  # noise is not skill


def test_other_sizings_replay_the_real_rule_with_fewer_shuffles(small_prices: pd.DataFrame):
    params = rule(sizing="equal_weight", top_k=2)
    backtest = BacktestParams(permutation={"samples": 500, "replay_samples": 3})
    out = run_permutation(small_prices, log_rows(small_prices), params, backtest)
    assert out["method"] == "replay" and out["samples"] == 3
    assert "sizing 'equal_weight'" in out["note"]
    assert 0.0 <= out["share_at_least_as_good"] <= 1.0


def test_no_shuffles_when_turned_off(small_prices: pd.DataFrame):
    backtest = BacktestParams(permutation={"samples": 0})
    assert run_permutation(small_prices, log_rows(small_prices), rule(), backtest)["method"] == (
        "off"
    )
