"""The statistics behind the reported numbers: base rates, dependence-respecting intervals, costs
of luck (block bootstraps, Holm, the deflated Sharpe ratio) and the two MASEs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from stock_mlops.core import metrics as M


def panel(n_dates: int, n_symbols: int, common: float, seed: int) -> pd.DataFrame:
    """Predicted and realised returns of ``n_symbols`` on ``n_dates``; ``common`` is the share of
    the variance of the realised return and of the forecast shared by all symbols of a day (the
    market's move; 0: independent rows)."""
    rng = np.random.default_rng(seed)
    size = n_dates * n_symbols
    dates = np.repeat(pd.bdate_range("2022-01-03", periods=n_dates), n_symbols)

    def mixed() -> np.ndarray:
        shared = np.repeat(rng.normal(0, 1, n_dates), n_symbols)
        return math.sqrt(common) * shared + math.sqrt(1 - common) * rng.normal(0, 1, size)

    actual = 0.0005 + 0.02 * mixed()
    predicted = 0.3 * actual + 0.02 * mixed()
    return pd.DataFrame({"date": dates, "predicted": predicted, "actual": actual})


# ------------------------------------------------------------------------ base rate and skill
def test_always_up_scores_its_base_rate_and_no_skill():
    actual = pd.Series([1, 1, -1, 1, -1, 1, 1, -1, 1, 1], dtype=float)
    out = M.directional_metrics(pd.Series(np.ones(10)), actual)
    assert out["directional_accuracy"] == out["directional_base_rate"] == pytest.approx(0.7)
    assert out["directional_skill"] == pytest.approx(0.0)
    # Half right looks like a coin flip, but always-up gets 70% on these calls: negative skill.
    half = M.directional_metrics(actual * np.r_[[-1.0] * 5, [1.0] * 5], actual)
    assert half["directional_accuracy"] == pytest.approx(0.5)
    assert half["directional_skill"] == pytest.approx((0.5 - 0.7) / 0.3)
    perfect = M.directional_metrics(actual, actual)
    assert perfect["directional_skill"] == pytest.approx(1.0)


def test_base_rate_counts_only_the_calls():
    # Row 2 predicts no change and row 3 did not move: neither is a call.
    out = M.directional_metrics(pd.Series([1, 1, 0, -1], dtype=float), pd.Series([1, -1, 1, 0.0]))
    assert out["directional_calls"] == 2
    assert out["directional_base_rate"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- date bootstrap
def test_date_bootstrap_is_wider_than_wilson_when_a_day_moves_all_symbols_together():
    frame = panel(300, 7, common=0.9, seed=1)
    out = M.forecast_metrics(
        100 * (1 + frame["predicted"]),
        100 * (1 + frame["actual"]),
        pd.Series(100.0, index=frame.index),
        dates=frame["date"],
    )
    wilson = out["directional_accuracy_wilson_high"] - out["directional_accuracy_wilson_low"]
    dated = out["directional_accuracy_high"] - out["directional_accuracy_low"]
    assert out["directional_accuracy_low"] < out["directional_accuracy"]
    assert out["directional_accuracy"] < out["directional_accuracy_high"]
    assert dated > 1.5 * wilson
    assert out["bootstrap_dates"] == 300


def test_date_bootstrap_matches_wilson_when_rows_are_independent():
    frame = panel(400, 1, common=0.0, seed=2)
    out = M.date_bootstrap_intervals(frame["date"], frame["predicted"], frame["actual"])
    direction = M.directional_metrics(np.sign(frame["predicted"]), np.sign(frame["actual"]))
    wilson = direction["directional_accuracy_high"] - direction["directional_accuracy_low"]
    dated = out["directional_accuracy_high"] - out["directional_accuracy_low"]
    assert dated == pytest.approx(wilson, rel=0.2)


def test_date_bootstrap_is_seeded():
    frame = panel(120, 5, common=0.5, seed=3)
    args = (frame["date"], frame["predicted"], frame["actual"])
    assert M.date_bootstrap_intervals(*args, seed=4) == M.date_bootstrap_intervals(*args, seed=4)
    assert M.date_bootstrap_intervals(*args, seed=4) != M.date_bootstrap_intervals(*args, seed=5)


def test_bootstrap_ic_agrees_with_re_ranking_every_resample():
    frame = panel(150, 7, common=0.5, seed=5).sort_values("date", kind="stable")
    out = M.date_bootstrap_intervals(
        frame["date"], frame["predicted"], frame["actual"], samples=300, seed=6
    )
    # The same resamples of dates, with the Spearman IC recomputed on each resample's rows.
    codes, _ = pd.factorize(frame["date"], sort=True)
    members = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
    index = M.bootstrap_indices(len(members), 300, 6, "stationary", out["bootstrap_block"])
    exact = [
        stats.spearmanr(
            frame["predicted"].to_numpy()[rows := np.concatenate([members[k] for k in draw])],
            frame["actual"].to_numpy()[rows],
        ).statistic
        for draw in index
    ]
    assert out["information_coefficient_low"] == pytest.approx(np.quantile(exact, 0.025), abs=0.01)
    assert out["information_coefficient_high"] == pytest.approx(np.quantile(exact, 0.975), abs=0.01)


# ---------------------------------------------------------------------------------- daily IC
def test_daily_ic_is_the_cross_sectional_spearman_of_each_date():
    frame = panel(30, 6, common=0.3, seed=7)
    ic = M.daily_information_coefficient(frame["date"], frame["predicted"], frame["actual"])
    assert len(ic) == 30
    day = frame[frame["date"] == frame["date"].iloc[0]]
    assert ic.iloc[0] == pytest.approx(stats.spearmanr(day["predicted"], day["actual"]).statistic)


def test_daily_ic_skips_dates_with_too_few_symbols():
    frame = pd.DataFrame(
        {"date": ["d1"] * 3 + ["d2"] * 2, "p": [1.0, 2, 3, 1, 2], "a": [1.0, 3, 2, 1, 2]}
    ).assign(date=lambda f: pd.to_datetime(f["date"].map({"d1": "2023-01-03", "d2": "2023-01-04"})))
    ic = M.daily_information_coefficient(frame["date"], frame["p"], frame["a"])
    assert ic.index.tolist() == [pd.Timestamp("2023-01-03")]


def test_mean_ic_t_statistic_uses_newey_west():
    ic = pd.Series(np.random.default_rng(8).normal(0.02, 0.1, 250))
    out = M.mean_ic_test(ic)
    lag = M.newey_west_lag(250)
    assert lag == 4
    expected = ic.mean() / math.sqrt(M.newey_west_lrv(ic.to_numpy(), lag) / 250)
    assert out["daily_ic_t"] == pytest.approx(expected)
    assert out["daily_ic_days"] == 250


def test_newey_west_hand_example():
    # e = [-1.5, -.5, .5, 1.5]; g0 = 1.25; g1 = 0.3125; lrv = g0 + 2 (1 - 1/2) g1
    assert M.newey_west_lrv(np.array([1.0, 2, 3, 4]), 1) == pytest.approx(1.5625)
    assert M.newey_west_lrv(np.array([1.0, 2, 3, 4]), 0) == pytest.approx(1.25)


# ------------------------------------------------------------------------------------- MASE
def test_relative_mae_keeps_its_old_name_as_an_alias():
    out = M.forecast_metrics(
        pd.Series([101.0, 99.0]), pd.Series([102.0, 98.0]), pd.Series([100.0, 100.0]), 2.0
    )
    assert out["mae_ratio_vs_naive"] == out["mase"] == pytest.approx(0.5)


def test_hyndman_mase_scales_each_symbol_by_its_in_sample_naive_error():
    history = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B", "B", "B"],
            "date": pd.to_datetime(["2020-01-02", "2020-01-03", "2021-01-04"] * 2),
            "r": [0.01, -0.03, 0.5, 0.02, 0.02, 0.5],
        }
    )
    # Only rows before 2021: A's mean |r| is 0.02, B's 0.02 too (the 0.5 rows are too late).
    scale = M.naive_return_scale(history["symbol"], history["date"], history["r"], "2021-01-01")
    assert scale.to_dict() == pytest.approx({"A": 0.02, "B": 0.02})
    rows = pd.DataFrame({"symbol": ["A", "B"], "pred": [0.01, 0.0], "act": [0.03, 0.01]})
    value = M.mase_hyndman(rows["pred"], rows["act"], rows["symbol"].map(scale))
    assert value == pytest.approx((0.02 / 0.02 + 0.01 / 0.02) / 2)


def test_the_naive_forecast_does_not_score_one_on_hyndmans_mase():
    # Naive predicts no change; its MASE is the ratio of the period's mean |r| to the scale's.
    actual = pd.Series([0.03, -0.03, 0.03])
    value = M.mase_hyndman(pd.Series([0.0] * 3), actual, pd.Series([0.02] * 3))
    assert value == pytest.approx(1.5)


# ---------------------------------------------------------------------------- Sharpe and luck
def test_risk_free_rate_compounds_to_the_annual_rate_and_lowers_the_sharpe():
    assert (1 + M.daily_rate(0.04)) ** 252 == pytest.approx(1.04)
    returns = pd.Series(np.random.default_rng(9).normal(0.001, 0.01, 300))
    excess = returns - M.daily_rate(0.04)
    assert M.sharpe_ratio(returns, 0.04) == pytest.approx(M.sharpe_ratio(excess))
    assert M.sharpe_ratio(returns, 0.04) < M.sharpe_ratio(returns)


def test_sharpe_interval_is_seeded_and_about_as_wide_as_theory_for_iid_days():
    returns = pd.Series(np.random.default_rng(10).normal(0.0005, 0.01, 500))
    out = M.sharpe_interval(returns, samples=2000, seed=1)
    assert out == M.sharpe_interval(returns, samples=2000, seed=1)
    assert out["low"] < out["sharpe"] < out["high"]
    daily = out["sharpe"] / math.sqrt(252)
    theory = 2 * 1.96 * math.sqrt((1 + daily**2 / 2) / 500) * math.sqrt(252)
    assert out["high"] - out["low"] == pytest.approx(theory, rel=0.2)


def test_sharpe_interval_widens_with_autocorrelated_returns():
    rng = np.random.default_rng(11)
    shocks = rng.normal(0, 0.01, 600)
    persistent = np.empty(600)
    persistent[0] = shocks[0]
    for t in range(1, 600):
        persistent[t] = 0.6 * persistent[t - 1] + shocks[t]
    persistent += 0.0008
    block = M.sharpe_interval(pd.Series(persistent), seed=2)
    iid = M.sharpe_interval(pd.Series(rng.permutation(persistent)), seed=2)
    assert block["block"] > 2
    assert block["high"] - block["low"] > 1.5 * (iid["high"] - iid["low"])


def test_sharpe_difference_of_identical_series_is_zero():
    returns = pd.Series(np.random.default_rng(0).normal(0.001, 0.01, 200))
    out = M.bootstrap_sharpe_difference(returns, returns, samples=200, seed=1)
    assert out["difference"] == out["low"] == out["high"] == 0.0
    assert out["share_a_ahead"] == 0.0


def test_sharpe_difference_uses_a_data_driven_block_and_is_seeded():
    rng = np.random.default_rng(0)
    noise = pd.Series(rng.normal(0.0, 0.01, 250))
    better, worse = noise + 0.003 + rng.normal(0, 0.002, 250), noise - 0.003
    out = M.bootstrap_sharpe_difference(better, worse, samples=300, seed=3)
    assert out["difference"] > 0 and out["low"] > 0 and out["share_a_ahead"] == 1.0
    assert out["p_value"] == pytest.approx(1 / 301)
    frame = pd.concat([better, worse], axis=1).to_numpy()
    assert out["block"] == M.block_length(frame)
    assert out == M.bootstrap_sharpe_difference(better, worse, samples=300, seed=3)
    circular = M.bootstrap_sharpe_difference(better, worse, samples=300, seed=3, kind="circular")
    assert circular["block"] == M.block_length(frame, "circular")


def test_sharpe_difference_of_a_too_short_series_is_undefined():
    short = pd.Series([0.01, 0.02, 0.03])
    out = M.bootstrap_sharpe_difference(short, short, samples=100, seed=1)
    assert math.isnan(out["difference"]) and math.isnan(out["p_value"])


def test_holm_adjusts_like_statsmodels():
    from statsmodels.stats.multitest import multipletests

    raw = {"a": 0.028, "b": 0.376, "c": 0.152, "d": 0.690, "e": math.nan}
    adjusted = M.holm(raw)
    expected = multipletests([0.028, 0.376, 0.152, 0.690], method="holm")[1]
    assert [adjusted[k] for k in "abcd"] == pytest.approx(list(expected))
    assert adjusted["a"] == pytest.approx(0.112)  # significant alone, not after the adjustment
    assert math.isnan(adjusted["e"])
    assert M.holm({"only": 0.03}) == {"only": 0.03}


def test_deflated_sharpe_falls_with_more_trials():
    returns = pd.Series(np.random.default_rng(12).normal(0.0012, 0.01, 500))
    one = M.deflated_sharpe_ratio(returns, 1)
    assert one["dsr"] == pytest.approx(one["psr"]) and one["expected_max_sharpe"] == 0
    values = [M.deflated_sharpe_ratio(returns, n)["dsr"] for n in (1, 5, 20, 100)]
    assert values == sorted(values, reverse=True) and values[-1] < values[0] - 0.2


def test_deflated_sharpe_reproduces_bailey_and_lopez_de_prado():
    # Their worked example: annualised SR 2.5 over 5 years of 250 days, skew -3, kurtosis 10,
    # 100 trials whose annualised Sharpes have variance 1/2: SR0 ~ 0.1132 a day, DSR ~ 0.9004.
    threshold = M.expected_max_sharpe(100, 0.5 / 250)
    assert threshold == pytest.approx(0.1132, abs=5e-5)
    dsr = M.probabilistic_sharpe_ratio(2.5 / math.sqrt(250), threshold, 1250, -3, 10)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    with pytest.raises(ValueError, match="at least 1"):
        M.expected_max_sharpe(0, 1.0)
