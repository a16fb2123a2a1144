"""Forecast and trading metrics, with the intervals a reader needs to judge luck from skill.

Conventions: daily data, 252 sessions a year; a Sharpe ratio is ``sqrt(252) * mean(r - rf) /
std(r - rf, ddof=1)`` with the daily risk-free rate compounding to the annual one; every random
procedure takes an integer ``seed`` and gives the same answer for the same seed.

Panel rows are not independent: the symbols of one day share the market's move, so intervals on
pooled accuracy or correlation resample whole dates (:func:`date_bootstrap_intervals`) and
intervals on return series resample blocks of days (arch's stationary or circular block
bootstrap, block length by Politis and White). arch is imported inside the functions that use
it, so this module stays cheap to import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

TRADING_DAYS = 252
_Z95 = 1.959963984540054
EULER_GAMMA = 0.5772156649015329
BootstrapKind = Literal["stationary", "circular"]

# Rows drawn for the date bootstrap of accuracy and IC in the evaluation (cheap: per-date sums).
DATE_BOOTSTRAP_SAMPLES = 1000
DATE_BOOTSTRAP_SEED = 0


# ------------------------------------------------------------------------- proportions
def wilson_interval(successes: int, trials: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    It treats every trial as independent; for panel rows use :func:`date_bootstrap_intervals`.
    """
    if trials <= 0:
        return (math.nan, math.nan)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


# ------------------------------------------------------------------------------ forecasts
def forecast_metrics(
    prediction: pd.Series,
    actual: pd.Series,
    last_close: pd.Series,
    naive_mae: float | None = None,
    *,
    dates: pd.Series | None = None,
    mase_scale: pd.Series | None = None,
    bootstrap_samples: int = DATE_BOOTSTRAP_SAMPLES,
    seed: int = DATE_BOOTSTRAP_SEED,
) -> dict[str, float]:
    """Price and return accuracy of next-day close forecasts.

    Args:
        prediction: Predicted closes.
        actual: Realised closes.
        last_close: The close each forecast was made from.
        naive_mae: MAE of the naive last-close forecast on the same rows.
        dates: The target date of each row. With dates, the intervals of directional accuracy,
            its base rate, its skill and the IC come from a bootstrap over dates, and the daily
            cross-sectional IC is reported; without, the accuracy interval is Wilson's.
        mase_scale: Per row, the scale of Hyndman's MASE (see :func:`naive_return_scale`).
        bootstrap_samples: Resamples of the date bootstrap.
        seed: Seed of the date bootstrap.

    Returns:
        ``n``; ``mae, rmse, mape`` (price); ``mae_return``; ``mae_ratio_vs_naive`` (MAE over
        the naive MAE on the same rows, 1 for naive by construction; ``mase`` is its old name,
        kept as an alias); ``mase_hyndman`` (when ``mase_scale`` is given); the direction
        figures of :func:`directional_metrics`; ``information_coefficient`` (pooled Spearman of
        predicted and realised return) with its interval; ``daily_ic_mean``, ``daily_ic_t``
        (Newey-West) and ``daily_ic_days``.
    """
    error = prediction - actual
    predicted_return = prediction / last_close - 1
    actual_return = actual / last_close - 1
    mae = float(error.abs().mean())
    ratio = mae / naive_mae if naive_mae else math.nan
    out = {
        "n": float(len(error)),
        "mae": mae,
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((error.abs() / actual.abs()).mean()),
        "mae_return": float((predicted_return - actual_return).abs().mean()),
        "mae_ratio_vs_naive": ratio,
        "mase": ratio,
    }
    if mase_scale is not None:
        out["mase_hyndman"] = mase_hyndman(predicted_return, actual_return, mase_scale)
    out.update(directional_metrics(np.sign(predicted_return), np.sign(actual_return)))
    out["information_coefficient"] = spearman(predicted_return, actual_return)
    if dates is not None:
        out.update(
            date_bootstrap_intervals(
                dates, predicted_return, actual_return, samples=bootstrap_samples, seed=seed
            )
        )
        out.update(
            mean_ic_test(daily_information_coefficient(dates, predicted_return, actual_return))
        )
    return out


def directional_metrics(predicted_sign: pd.Series, actual_sign: pd.Series) -> dict[str, float]:
    """Hit rate of direction calls beside what "always up" gets on the same calls.

    A forecast of "no change" is not a call and is not counted, nor is a day without a move.

    Returns:
        ``directional_accuracy``; ``directional_base_rate`` (the share of the calls on which the
        price rose: the accuracy of always calling "up"); ``directional_skill`` = (accuracy -
        base rate) / (1 - base rate), 0 for "always up", 1 for perfect, negative when worse than
        always up; ``directional_calls``; Wilson 95% bounds of the accuracy, as
        ``directional_accuracy_low|high`` (replaced by the date bootstrap when dates are known)
        and ``directional_accuracy_wilson_low|high``.
    """
    predicted = np.asarray(predicted_sign, dtype=float)
    realised = np.asarray(actual_sign, dtype=float)
    calls = (predicted != 0) & (realised != 0) & np.isfinite(predicted) & np.isfinite(realised)
    n = int(calls.sum())
    hits = int((predicted[calls] == realised[calls]).sum())
    ups = int((realised[calls] > 0).sum())
    low, high = wilson_interval(hits, n)
    accuracy = hits / n if n else math.nan
    base = ups / n if n else math.nan
    return {
        "directional_accuracy": accuracy,
        "directional_accuracy_low": low,
        "directional_accuracy_high": high,
        "directional_accuracy_wilson_low": low,
        "directional_accuracy_wilson_high": high,
        "directional_base_rate": base,
        "directional_skill": _skill(accuracy, base),
        "directional_calls": float(n),
    }


def _skill(accuracy: Any, base: Any) -> Any:
    """(accuracy - base) / (1 - base), NaN where the base rate is 1 (or undefined)."""
    a, b = np.asarray(accuracy, dtype=float), np.asarray(base, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(b < 1, (a - b) / (1 - b), np.nan)
    return float(out) if out.ndim == 0 else out


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman rank correlation; NaN when either side is constant or too short."""
    pair = pd.concat([a, b], axis=1).dropna()
    if len(pair) < 3 or pair.iloc[:, 0].nunique() < 2 or pair.iloc[:, 1].nunique() < 2:
        return math.nan
    return float(stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1]).statistic)


def date_bootstrap_intervals(
    dates: pd.Series,
    predicted: pd.Series,
    actual: pd.Series,
    *,
    samples: int = DATE_BOOTSTRAP_SAMPLES,
    seed: int = DATE_BOOTSTRAP_SEED,
    size: float = 0.95,
    with_ic: bool = True,
) -> dict[str, float]:
    """Percentile intervals from a bootstrap over dates: every symbol of a drawn date together.

    The dates are resampled with arch's stationary bootstrap over the date sequence (block
    length by Politis-White on the daily hit share, at least 1), so both the dependence across
    symbols on one day and short runs of similar days are kept. Accuracy, base rate and skill
    are recomputed from per-date sums of hits, calls and ups. The pooled IC of a resample is the
    Pearson correlation of the full sample's ranks over the drawn rows (the Spearman IC of the
    full sample exactly; on a resample it differs from re-ranking only through the rows left
    out or repeated), which also reduces to per-date sums.

    Args:
        dates: Date of each row.
        predicted: Predicted return (or any score whose sign is the call).
        actual: Realised return.
        samples: Number of resamples.
        seed: Seed of the bootstrap.
        size: Coverage of the intervals.
        with_ic: Also the interval of the pooled IC.

    Returns:
        ``directional_accuracy_low|high``, ``directional_base_rate_low|high``,
        ``directional_skill_low|high``, ``information_coefficient_low|high`` (with ``with_ic``),
        ``bootstrap_block`` and ``bootstrap_dates``.
    """
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(pd.Series(np.asarray(dates))),
            "p": np.asarray(predicted, dtype=float),
            "a": np.asarray(actual, dtype=float),
        }
    ).dropna()
    names = ["directional_accuracy", "directional_base_rate", "directional_skill"]
    if with_ic:
        names.append("information_coefficient")
    empty = {f"{n}_{side}": math.nan for n in names for side in ("low", "high")}
    codes, uniques = pd.factorize(frame["date"], sort=True)
    n_dates = len(uniques)
    if n_dates < 3:
        return {**empty, "bootstrap_block": math.nan, "bootstrap_dates": float(n_dates)}
    ps, as_ = np.sign(frame["p"].to_numpy()), np.sign(frame["a"].to_numpy())
    calls = (ps != 0) & (as_ != 0)
    columns = {
        "calls": calls.astype(float),
        "hits": (calls & (ps == as_)).astype(float),
        "ups": (calls & (as_ > 0)).astype(float),
    }
    if with_ic:
        rx = stats.rankdata(frame["p"].to_numpy())
        ry = stats.rankdata(frame["a"].to_numpy())
        columns.update(
            {
                "n": np.ones(len(frame)),
                "x": rx,
                "y": ry,
                "xx": rx * rx,
                "yy": ry * ry,
                "xy": rx * ry,
            }
        )
    per_date = pd.DataFrame(columns).groupby(codes).sum()
    share = (per_date["hits"] / per_date["calls"].where(per_date["calls"] > 0)).fillna(0.5)
    block = block_length(share.to_numpy())
    index = bootstrap_indices(n_dates, samples, seed, "stationary", block)
    sums = {name: per_date[name].to_numpy()[index].sum(axis=1) for name in per_date.columns}
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = sums["hits"] / sums["calls"]
        base = sums["ups"] / sums["calls"]
        draws = {
            "directional_accuracy": accuracy,
            "directional_base_rate": base,
            "directional_skill": _skill(accuracy, base),
        }
        if with_ic:
            n = sums["n"]
            cov = sums["xy"] / n - sums["x"] * sums["y"] / n**2
            var_x = sums["xx"] / n - (sums["x"] / n) ** 2
            var_y = sums["yy"] / n - (sums["y"] / n) ** 2
            draws["information_coefficient"] = cov / np.sqrt(var_x * var_y)
    alpha = (1 - size) / 2
    out: dict[str, float] = {}
    for name, values in draws.items():
        finite = values[np.isfinite(values)]
        out[f"{name}_low"] = float(np.quantile(finite, alpha)) if len(finite) else math.nan
        out[f"{name}_high"] = float(np.quantile(finite, 1 - alpha)) if len(finite) else math.nan
    return {**out, "bootstrap_block": float(block), "bootstrap_dates": float(n_dates)}


def daily_information_coefficient(
    dates: pd.Series, predicted: pd.Series, actual: pd.Series, min_symbols: int = 3
) -> pd.Series:
    """Spearman correlation across symbols on each date.

    Dates with fewer than ``min_symbols`` rows or a constant side are left out.

    Returns:
        The IC per date, sorted by date.
    """
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(pd.Series(np.asarray(dates))),
            "p": np.asarray(predicted, dtype=float),
            "a": np.asarray(actual, dtype=float),
        }
    ).dropna()
    if frame.empty:
        return pd.Series(dtype=float)
    groups = frame.groupby("date")
    frame["rp"] = groups["p"].rank()
    frame["ra"] = groups["a"].rank()
    by_date = frame.groupby("date")
    count = by_date.size()
    ic = by_date[["rp", "ra"]].corr().xs("rp", level=1)["ra"]
    keep = (count >= min_symbols) & (by_date["p"].nunique() > 1) & (by_date["a"].nunique() > 1)
    return ic[keep].dropna().sort_index()


def mean_ic_test(daily_ic: pd.Series) -> dict[str, float]:
    """Mean of the daily IC with its Newey-West t-statistic (Bartlett kernel, lag by the
    floor(4 (T/100)^(2/9)) rule), so the persistence of daily ICs does not inflate it.

    Returns:
        ``daily_ic_mean``, ``daily_ic_t``, ``daily_ic_days``.
    """
    values = daily_ic.dropna().to_numpy(dtype=float)
    n = len(values)
    if n < 3:
        return {"daily_ic_mean": math.nan, "daily_ic_t": math.nan, "daily_ic_days": float(n)}
    variance = newey_west_lrv(values, newey_west_lag(n))
    t = float(values.mean() / math.sqrt(variance / n)) if variance > 0 else math.nan
    return {"daily_ic_mean": float(values.mean()), "daily_ic_t": t, "daily_ic_days": float(n)}


def naive_return_scale(
    symbols: pd.Series, dates: pd.Series, returns: pd.Series, before: Any
) -> pd.Series:
    """Per symbol, the scale of Hyndman and Koehler's MASE in return units.

    The in-sample MAE of the one-step naive (last close) forecast, measured as a return, is the
    mean absolute one-day return: ``q = mean |r_t|`` over the symbol's rows dated before
    ``before``. Return units keep the scale from drifting with the price level (in price units,
    a scale from 2013-2020 makes the naive forecast itself score about 4.6 on 2022-2023).

    Args:
        symbols: Symbol of each row.
        dates: Date of each row (the target date).
        returns: The one-day return realised on that date.
        before: Only rows dated strictly before this count.

    Returns:
        Symbol -> scale.
    """
    frame = pd.DataFrame(
        {
            "symbol": np.asarray(symbols),
            "date": pd.to_datetime(pd.Series(np.asarray(dates))),
            "r": np.asarray(returns, dtype=float),
        }
    )
    frame = frame[(frame["date"] < pd.Timestamp(before)) & frame["r"].notna()]
    scale = frame.groupby("symbol")["r"].apply(lambda r: r.abs().mean())
    return scale[scale > 0]


def mase_hyndman(predicted_return: pd.Series, actual_return: pd.Series, scale: pd.Series) -> float:
    """Hyndman-Koehler MASE in return units: mean of ``|predicted - realised return| / q``.

    Args:
        predicted_return: Predicted one-day return per row.
        actual_return: Realised return per row.
        scale: Per row, the symbol's scale ``q`` (:func:`naive_return_scale`).

    Returns:
        The MASE over rows with a scale (NaN when none has one). Below 1 means errors smaller
        than the random walk's in-sample error; the naive forecast's own MASE is the ratio of
        the evaluated period's mean |return| to the scale period's, not 1.
    """
    ratio = np.abs(
        np.asarray(predicted_return, dtype=float) - np.asarray(actual_return, dtype=float)
    ) / np.asarray(scale, dtype=float)
    ratio = ratio[np.isfinite(ratio)]
    return float(ratio.mean()) if len(ratio) else math.nan


# ------------------------------------------------------------------ dependence, bootstraps
def newey_west_lag(n: int) -> int:
    """Newey-West (1994) rule of thumb: floor(4 (n/100)^(2/9))."""
    return int(math.floor(4 * (n / 100.0) ** (2.0 / 9.0))) if n > 0 else 0


def newey_west_lrv(values: np.ndarray, lag: int) -> float:
    """Long-run variance with the Bartlett kernel: g0 + 2 sum_{j<=L} (1 - j/(L+1)) g_j, with
    autocovariances g_j = sum_t e_t e_(t-j) / n of the demeaned series."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    e = x - x.mean()
    lrv = float(e @ e) / n
    for j in range(1, min(lag, n - 1) + 1):
        lrv += 2.0 * (1.0 - j / (lag + 1.0)) * float(e[j:] @ e[:-j]) / n
    return lrv


def block_length(values: np.ndarray, kind: BootstrapKind = "stationary") -> float:
    """Politis-White (2004, with the 2009 correction) block length from arch: the largest over
    the columns of ``values``, at least 1 (1 when it cannot be estimated)."""
    from arch.bootstrap import optimal_block_length  # noqa: PLC0415 - arch is slow to import

    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < 10 or not (x.std(axis=0) > 0).any():
        return 1.0
    # arch names the columns "stationary" and "circular" (its docstring's b_sb/b_cb is wrong).
    estimate = optimal_block_length(x[:, x.std(axis=0) > 0])[kind].to_numpy(dtype=float)
    value = float(np.nanmax(estimate)) if np.isfinite(estimate).any() else 1.0
    return max(1.0, value)


def bootstrap_indices(
    n: int, samples: int, seed: int, kind: BootstrapKind | Literal["iid"], block: float
) -> np.ndarray:
    """The ``samples x n`` positions drawn by arch's bootstrap of a length-``n`` series.

    ``update_indices`` is the draw arch's own ``apply``/``conf_int`` make; taking the positions
    lets the statistic be computed for all resamples at once in numpy. arch 8.0 seeds with
    ``seed=`` only (an int becomes ``numpy.random.default_rng(seed)``).
    """
    from arch.bootstrap import (  # noqa: PLC0415
        CircularBlockBootstrap,
        IIDBootstrap,
        StationaryBootstrap,
    )

    positions = np.arange(n)
    if kind == "iid":
        bootstrap = IIDBootstrap(positions, seed=seed)
    elif kind == "circular":
        # The circular bootstrap needs a whole block length.
        bootstrap = CircularBlockBootstrap(int(math.ceil(block)), positions, seed=seed)
    else:
        bootstrap = StationaryBootstrap(float(block), positions, seed=seed)
    return np.vstack([np.asarray(bootstrap.update_indices()) for _ in range(samples)])


# --------------------------------------------------------------------------- trading
def max_drawdown(equity: pd.Series) -> float:
    """Largest peak-to-trough loss as a negative fraction (0 when equity never falls)."""
    if equity.empty:
        return math.nan
    return float((equity / equity.cummax() - 1).min())


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak at each date."""
    return equity / equity.cummax() - 1


def daily_rate(annual_rate: float) -> float:
    """The daily rate that compounds to ``annual_rate`` over 252 sessions."""
    return (1.0 + annual_rate) ** (1.0 / TRADING_DAYS) - 1.0


def sharpe_ratio(daily_returns: pd.Series, risk_free_rate: float = 0.0) -> float:
    """Annualised Sharpe ratio over a risk-free rate (annual, compounded daily), sqrt(252)
    scaling; NaN without variation."""
    excess = np.asarray(daily_returns, dtype=float) - daily_rate(risk_free_rate)
    excess = excess[np.isfinite(excess)]
    if len(excess) < 2:
        return math.nan
    std = excess.std(ddof=1)
    if not std or not np.isfinite(std) or std < 1e-15 * max(abs(excess.mean()), 1e-300):
        return math.nan
    return float(excess.mean() / std * math.sqrt(TRADING_DAYS))


def _sharpe_rows(matrix: np.ndarray) -> np.ndarray:
    std = matrix.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, matrix.mean(axis=1) / std * math.sqrt(TRADING_DAYS), np.nan)


def performance_metrics(equity: pd.Series, risk_free_rate: float = 0.0) -> dict[str, float]:
    """Total return, CAGR, annualised volatility, Sharpe (over ``risk_free_rate``) and maximum
    drawdown of an equity curve."""
    equity = equity.dropna()
    if len(equity) < 2:
        return {
            k: math.nan for k in ("total_return", "cagr", "volatility", "sharpe", "max_drawdown")
        }
    returns = equity.pct_change().dropna()
    years = len(returns) / TRADING_DAYS
    total = float(equity.iloc[-1] / equity.iloc[0] - 1)
    return {
        "total_return": total,
        "cagr": float((1 + total) ** (1 / years) - 1) if years > 0 and total > -1 else math.nan,
        "volatility": float(returns.std(ddof=1) * math.sqrt(TRADING_DAYS)),
        "sharpe": sharpe_ratio(returns, risk_free_rate),
        "max_drawdown": max_drawdown(equity),
    }


def sharpe_interval(
    daily_returns: pd.Series,
    *,
    risk_free_rate: float = 0.0,
    samples: int = 2000,
    seed: int = 0,
    kind: BootstrapKind = "stationary",
    size: float = 0.95,
) -> dict[str, float]:
    """Percentile interval of one annualised Sharpe ratio from a block bootstrap of days.

    arch's stationary (or circular) block bootstrap with a Politis-White block length keeps
    the autocorrelation and volatility clustering of daily returns. (arch's ``conf_int``
    defaults to the *basic* interval; this is the percentile one.) Over about 1.5 years the
    interval is roughly +-1.6 wide, and fat tails make every method somewhat optimistic.

    Returns:
        ``sharpe``, ``low``, ``high``, ``block`` (NaN bounds with fewer than 20 days).
    """
    excess = np.asarray(daily_returns, dtype=float) - daily_rate(risk_free_rate)
    excess = excess[np.isfinite(excess)]
    point = sharpe_ratio(pd.Series(excess))
    if len(excess) < 20 or not math.isfinite(point):
        return {"sharpe": point, "low": math.nan, "high": math.nan, "block": math.nan}
    block = block_length(excess, kind)
    index = bootstrap_indices(len(excess), samples, seed, kind, block)
    draws = _sharpe_rows(excess[index])
    draws = draws[np.isfinite(draws)]
    alpha = (1 - size) / 2
    return {
        "sharpe": point,
        "low": float(np.quantile(draws, alpha)),
        "high": float(np.quantile(draws, 1 - alpha)),
        "block": block,
    }


def bootstrap_sharpe_difference(
    returns_a: pd.Series,
    returns_b: pd.Series,
    samples: int,
    seed: int,
    *,
    block: float | None = None,
    kind: BootstrapKind = "stationary",
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """Paired block bootstrap of Sharpe(a) - Sharpe(b) over their common dates.

    Both series are resampled with the same days (arch's stationary or circular bootstrap), so
    the dependence between the two teams on the same market days is kept; the block length is
    the larger Politis-White estimate of the two series unless given.

    Returns:
        ``difference``; the 95% percentile interval ``low, high``; ``se``; ``share_a_ahead``
        (share of resamples in which ``a`` is ahead: not a p-value); ``p_value``, one-sided for
        "a has the higher Sharpe", from the resamples centred on the estimate,
        (1 + #{d* - d >= d}) / (samples + 1); ``block``; ``n`` (common days).
    """
    pair = pd.concat([returns_a, returns_b], axis=1, join="inner").dropna()
    n = len(pair)
    undefined = {
        "difference": math.nan,
        "low": math.nan,
        "high": math.nan,
        "se": math.nan,
        "share_a_ahead": math.nan,
        "p_value": math.nan,
        "block": math.nan,
        "n": float(n),
    }
    if n < 20:
        return undefined
    x = pair.to_numpy(dtype=float) - daily_rate(risk_free_rate)
    point = sharpe_ratio(pd.Series(x[:, 0])) - sharpe_ratio(pd.Series(x[:, 1]))
    if not math.isfinite(point):
        return undefined
    size = block_length(x, kind) if block is None else float(block)
    index = bootstrap_indices(n, samples, seed, kind, size)
    diffs = _sharpe_rows(x[:, 0][index]) - _sharpe_rows(x[:, 1][index])
    diffs = diffs[np.isfinite(diffs)]
    if not len(diffs):
        return undefined
    return {
        "difference": float(point),
        "low": float(np.quantile(diffs, 0.025)),
        "high": float(np.quantile(diffs, 0.975)),
        "se": float(diffs.std(ddof=1)),
        "share_a_ahead": float((diffs > 0).mean()),
        "p_value": float((1 + np.sum(diffs - point >= point)) / (len(diffs) + 1)),
        "block": size,
        "n": float(n),
    }


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm's (1979) step-down adjustment: family-wise error control over several comparisons.

    Args:
        pvalues: Name -> raw p-value (NaN ones are left out of the family and stay NaN).

    Returns:
        Name -> adjusted p-value, in the input's order.
    """
    finite = {k: float(v) for k, v in pvalues.items() if v is not None and math.isfinite(v)}
    ordered = sorted(finite, key=lambda k: finite[k])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * finite[name]))
        adjusted[name] = running
    return {k: adjusted.get(k, math.nan) for k in pvalues}


# ----------------------------------------------------------------- deflated Sharpe ratio
def expected_max_sharpe(n_trials: int, trial_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-free trials (Bailey and Lopez de
    Prado 2014): sqrt(V) ((1 - g) z(1 - 1/N) + g z(1 - 1/(N e))), g the Euler-Mascheroni
    constant; 0 for one trial. In the units of ``trial_variance``."""
    if n_trials < 1:
        raise ValueError(f"the number of trials must be at least 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    z = (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1.0 / n_trials) + EULER_GAMMA * stats.norm.ppf(
        1 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(trial_variance) * z)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true Sharpe > benchmark): Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)).

    ``sharpe`` and ``benchmark`` are per observation (daily, not annualised); ``kurtosis`` is
    the non-excess kurtosis (3 for a normal distribution).
    """
    denominator = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe * sharpe
    if n_obs < 2 or not denominator > 0:
        return math.nan
    return float(
        stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denominator))
    )


def deflated_sharpe_ratio(
    daily_returns: pd.Series,
    n_trials: int,
    trial_sharpe_variance: float | None = None,
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """The deflated Sharpe ratio: the probability that the true Sharpe beats the best a skill-free
    search over ``n_trials`` configurations would show by luck.

    Args:
        daily_returns: The selected strategy's daily returns.
        n_trials: Configurations tried (1: the DSR is the PSR against 0).
        trial_sharpe_variance: Variance of the trials' annualised Sharpe ratios; None uses the
            sampling variance of a Sharpe estimate under the null, 1/T per day (252/T a year).
        risk_free_rate: Annual risk-free rate.

    Returns:
        ``dsr``, ``psr`` (against 0), ``sharpe`` and ``expected_max_sharpe`` (annualised),
        ``trials``.
    """
    excess = np.asarray(daily_returns, dtype=float) - daily_rate(risk_free_rate)
    excess = excess[np.isfinite(excess)]
    n = len(excess)
    undefined = {
        "dsr": math.nan,
        "psr": math.nan,
        "sharpe": math.nan,
        "expected_max_sharpe": math.nan,
        "trials": float(n_trials),
    }
    if n < 20 or not excess.std(ddof=1) > 0:
        return undefined
    daily_sharpe = float(excess.mean() / excess.std(ddof=1))
    variance = 1.0 / n if trial_sharpe_variance is None else trial_sharpe_variance / TRADING_DAYS
    threshold = expected_max_sharpe(int(n_trials), variance)
    skew = float(stats.skew(excess))
    kurtosis = float(stats.kurtosis(excess, fisher=False))
    root = math.sqrt(TRADING_DAYS)
    return {
        "dsr": probabilistic_sharpe_ratio(daily_sharpe, threshold, n, skew, kurtosis),
        "psr": probabilistic_sharpe_ratio(daily_sharpe, 0.0, n, skew, kurtosis),
        "sharpe": daily_sharpe * root,
        "expected_max_sharpe": threshold * root,
        "trials": float(n_trials),
    }
