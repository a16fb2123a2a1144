"""Metric formulas, checked on series small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core import metrics as M

# Daily returns +10%, -10%, +10%: mean 1/30, sample standard deviation 1/sqrt(75).
EQUITY = pd.Series([100.0, 110.0, 99.0, 108.9])


def test_sharpe_is_mean_over_sample_std_times_sqrt_252():
    returns = EQUITY.pct_change().dropna()
    assert M.sharpe_ratio(returns) == pytest.approx((1 / 30) * math.sqrt(75) * math.sqrt(252))


@pytest.mark.parametrize("returns", [[0.01, 0.01, 0.01], [0.02], []])
def test_sharpe_is_undefined_without_variation(returns: list[float]):
    assert math.isnan(M.sharpe_ratio(pd.Series(returns, dtype=float)))


def test_max_drawdown_is_the_worst_fall_from_a_running_peak():
    assert M.max_drawdown(EQUITY) == pytest.approx(99 / 110 - 1)
    assert M.max_drawdown(pd.Series([100.0, 50.0, 200.0, 120.0, 150.0])) == pytest.approx(-0.5)
    assert list(M.drawdown(pd.Series([100.0, 80.0, 120.0]))) == pytest.approx([0.0, -0.2, 0.0])


def test_max_drawdown_is_zero_when_equity_never_falls_and_nan_when_empty():
    assert M.max_drawdown(pd.Series([1.0, 2.0, 3.0])) == 0.0
    assert math.isnan(M.max_drawdown(pd.Series([], dtype=float)))


def test_performance_metrics_by_hand():
    out = M.performance_metrics(EQUITY)
    total = 108.9 / 100 - 1
    assert out["total_return"] == pytest.approx(total)
    # Three daily returns are 3/252 of a year.
    assert out["cagr"] == pytest.approx((1 + total) ** (252 / 3) - 1)
    assert out["volatility"] == pytest.approx(math.sqrt(252 / 75))
    assert out["sharpe"] == pytest.approx(math.sqrt(75 * 252) / 30)
    assert out["max_drawdown"] == pytest.approx(-0.1)


def test_cagr_of_a_year_of_sessions_is_the_total_return():
    equity = pd.Series(np.linspace(100.0, 120.0, M.TRADING_DAYS + 1))
    out = M.performance_metrics(equity)
    assert out["cagr"] == pytest.approx(0.2)
    assert out["total_return"] == pytest.approx(0.2)


def test_performance_metrics_need_two_points():
    out = M.performance_metrics(pd.Series([100.0, math.nan]))
    assert set(out) == {"total_return", "cagr", "volatility", "sharpe", "max_drawdown"}
    assert all(math.isnan(v) for v in out.values())


def test_cagr_is_undefined_after_losing_everything():
    assert math.isnan(M.performance_metrics(pd.Series([100.0, 0.0]))["cagr"])


def test_wilson_interval_known_value():
    low, high = M.wilson_interval(50, 100)
    assert (low, high) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    assert M.wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(v) for v in M.wilson_interval(0, 0))


def test_directional_metrics_ignore_no_change_calls():
    out = M.directional_metrics(pd.Series([1, -1, 0, 1]), pd.Series([1, 1, 1, 0]))
    assert out["directional_calls"] == 2
    assert out["directional_accuracy"] == 0.5


def test_forecast_metrics_by_hand():
    out = M.forecast_metrics(
        prediction=pd.Series([101.0, 99.0]),
        actual=pd.Series([102.0, 98.0]),
        last_close=pd.Series([100.0, 100.0]),
        naive_mae=2.0,
    )
    assert out["mae"] == pytest.approx(1.0)
    assert out["rmse"] == pytest.approx(1.0)
    assert out["mape"] == pytest.approx((1 / 102 + 1 / 98) / 2)
    assert out["mae_return"] == pytest.approx(0.01)
    assert out["mase"] == pytest.approx(0.5)
    assert out["directional_accuracy"] == 1.0
    assert math.isnan(out["information_coefficient"])  # fewer than three points


def test_forecast_metrics_without_a_naive_mae_have_no_mase():
    one = pd.Series([1.0])
    assert math.isnan(M.forecast_metrics(one, one, one)["mase"])


def test_spearman():
    assert M.spearman(pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([1.0, 4.0, 9.0, 16.0])) == 1.0
    assert math.isnan(M.spearman(pd.Series([1.0, 1.0, 1.0]), pd.Series([1.0, 2.0, 3.0])))
