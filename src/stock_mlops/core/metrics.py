"""Forecast and trading metrics, with the intervals a reader needs to judge luck from skill."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

TRADING_DAYS = 252
_Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if trials <= 0:
        return (math.nan, math.nan)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def forecast_metrics(
    prediction: pd.Series,
    actual: pd.Series,
    last_close: pd.Series,
    naive_mae: float | None = None,
) -> dict[str, float]:
    """Price and return accuracy of next-day close forecasts.

    Args:
        prediction: Predicted closes.
        actual: Realised closes.
        last_close: The close each forecast was made from.
        naive_mae: MAE of the naive last-close forecast on the same rows, for MASE.

    Returns:
        ``mae, rmse, mape`` (price), ``mae_return``, ``mase`` (MAE over the naive MAE on the same
        rows), ``directional_accuracy`` with its Wilson 95% bounds and the number of calls it is
        based on, ``information_coefficient`` (Spearman of predicted and realised return) and
        ``n``.
    """
    error = prediction - actual
    predicted_return = prediction / last_close - 1
    actual_return = actual / last_close - 1
    mae = float(error.abs().mean())
    out = {
        "n": float(len(error)),
        "mae": mae,
        "rmse": float(np.sqrt((error**2).mean())),
        "mape": float((error.abs() / actual.abs()).mean()),
        "mae_return": float((predicted_return - actual_return).abs().mean()),
        "mase": mae / naive_mae if naive_mae else math.nan,
    }
    out.update(directional_metrics(np.sign(predicted_return), np.sign(actual_return)))
    out["information_coefficient"] = spearman(predicted_return, actual_return)
    return out


def directional_metrics(predicted_sign: pd.Series, actual_sign: pd.Series) -> dict[str, float]:
    """Hit rate of direction calls; a forecast of "no change" is not a call and is not counted."""
    calls = (predicted_sign != 0) & (actual_sign != 0)
    n = int(calls.sum())
    hits = int((predicted_sign[calls] == actual_sign[calls]).sum())
    low, high = wilson_interval(hits, n)
    return {
        "directional_accuracy": hits / n if n else math.nan,
        "directional_accuracy_low": low,
        "directional_accuracy_high": high,
        "directional_calls": float(n),
    }


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman rank correlation; NaN when either side is constant or too short."""
    pair = pd.concat([a, b], axis=1).dropna()
    if len(pair) < 3 or pair.iloc[:, 0].nunique() < 2 or pair.iloc[:, 1].nunique() < 2:
        return math.nan
    return float(stats.spearmanr(pair.iloc[:, 0], pair.iloc[:, 1]).statistic)


def max_drawdown(equity: pd.Series) -> float:
    """Largest peak-to-trough loss as a negative fraction (0 when equity never falls)."""
    if equity.empty:
        return math.nan
    return float((equity / equity.cummax() - 1).min())


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak at each date."""
    return equity / equity.cummax() - 1


def sharpe_ratio(daily_returns: pd.Series) -> float:
    """Annualised Sharpe ratio (risk-free rate 0, sqrt(252) scaling)."""
    std = daily_returns.std(ddof=1)
    if len(daily_returns) < 2 or not std or not np.isfinite(std):
        return math.nan
    return float(daily_returns.mean() / std * math.sqrt(TRADING_DAYS))


def performance_metrics(equity: pd.Series) -> dict[str, float]:
    """Total return, CAGR, annualised volatility, Sharpe and maximum drawdown of an equity curve."""
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
        "sharpe": sharpe_ratio(returns),
        "max_drawdown": max_drawdown(equity),
    }


def bootstrap_sharpe_difference(
    returns_a: pd.Series,
    returns_b: pd.Series,
    samples: int,
    block: int,
    seed: int,
) -> dict[str, float]:
    """Paired moving-block bootstrap of Sharpe(a) - Sharpe(b) over their common dates.

    Blocks keep short-range autocorrelation; pairing keeps the dependence between the two teams
    (same market days). Returns the point estimate, the 95% percentile interval and the share of
    resamples in which ``a`` beats ``b``.
    """
    pair = pd.concat([returns_a, returns_b], axis=1, join="inner").dropna()
    n = len(pair)
    if n < max(2 * block, 10):
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "p_a_better": math.nan}
    a = pair.iloc[:, 0].to_numpy()
    b = pair.iloc[:, 1].to_numpy()
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(samples, n_blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(samples, -1)[:, :n]
    diffs = _sharpe_rows(a[index]) - _sharpe_rows(b[index])
    diffs = diffs[np.isfinite(diffs)]
    point = sharpe_ratio(pd.Series(a)) - sharpe_ratio(pd.Series(b))
    return {
        "difference": float(point),
        "low": float(np.percentile(diffs, 2.5)) if len(diffs) else math.nan,
        "high": float(np.percentile(diffs, 97.5)) if len(diffs) else math.nan,
        "p_a_better": float((diffs > 0).mean()) if len(diffs) else math.nan,
    }


def _sharpe_rows(matrix: np.ndarray) -> np.ndarray:
    std = matrix.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, matrix.mean(axis=1) / std * math.sqrt(TRADING_DAYS), np.nan)
