"""Merging fetched windows into one history, and split/dividend adjustment. Pure functions.

Conventions:
- With ``adjusted_close`` present, open/high/low/close are scaled row by row by
  ``adjusted_close / close`` (the vendor's split and dividend adjustment).
- With ``split_coefficient`` present (rounded to the nearest simple fraction, since vendors ship
  float noise such as 7.00000700001), every price before a split's ex-date is divided by the
  coefficient and every volume multiplied by it.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

PRICE_FIELDS = ["open", "high", "low", "close"]


def merge_history(frames: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Merges a symbol's archived payloads, oldest first, into one history.

    A ``full`` or ``file`` payload is a complete state and replaces what came before; a
    ``compact`` payload overwrites the dates it covers. When the vendor's adjusted close moved
    since the earlier fetch (a dividend or split in between), earlier rows are rescaled by the
    ratio observed on the overlapping dates so the series stays consistent.

    Args:
        frames: ``(kind, bars)`` pairs in fetch order.

    Returns:
        The merged bars sorted by date.

    Raises:
        ValueError: When a compact window does not overlap the stored history.
    """
    history: pd.DataFrame | None = None
    for kind, bars in frames:
        if history is None or kind != "compact":
            history = bars
            continue
        overlap = history.merge(bars, on="date", suffixes=("_old", "_new"))
        if overlap.empty:
            raise ValueError(
                f"a compact window starting {bars['date'].min().date()} does not overlap the "
                f"stored history ending {history['date'].max().date()}: a full fetch is needed"
            )
        older = history[history["date"] < bars["date"].min()].copy()
        if "adjusted_close" in bars.columns and "adjusted_close" in older.columns:
            ratio = (overlap["adjusted_close_new"] / overlap["adjusted_close_old"]).median()
            if np.isfinite(ratio) and ratio > 0:
                older["adjusted_close"] = older["adjusted_close"] * ratio
        history = pd.concat([older, bars], ignore_index=True)
    assert history is not None, "merge_history needs at least one payload"
    if history["date"].is_monotonic_increasing:  # one payload: parsers return it sorted
        return history
    return history.sort_values("date", kind="stable").reset_index(drop=True)


def round_split_coefficient(value: float) -> float:
    """Rounds a vendor split coefficient to the nearest simple fraction (7.000007 -> 7.0)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    return float(Fraction(value).limit_denominator(100))


def adjust_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Returns split/dividend-adjusted ``date, open, high, low, close, volume``.

    Args:
        bars: Validated bars of one symbol, sorted by date.

    Returns:
        A new frame; the input is not modified.
    """
    split_factor = _cumulative_split_factor(bars).to_numpy(dtype=float)
    out = {"date": bars["date"].to_numpy()}
    if "adjusted_close" in bars.columns and bars["adjusted_close"].notna().all():
        ratio = bars["adjusted_close"].to_numpy(dtype=float) / bars["close"].to_numpy(dtype=float)
        for field in PRICE_FIELDS:
            out[field] = bars[field].to_numpy(dtype=float) * ratio
    else:
        for field in PRICE_FIELDS:
            out[field] = bars[field].to_numpy(dtype=float) / split_factor
    out["volume"] = bars["volume"].to_numpy(dtype=float) * split_factor
    return pd.DataFrame(out, index=bars.index, copy=False)


def _cumulative_split_factor(bars: pd.DataFrame) -> pd.Series:
    """For each row, the product of the split coefficients of all later ex-dates."""
    if "split_coefficient" not in bars.columns:
        return pd.Series(1.0, index=bars.index)
    coefficients = bars["split_coefficient"].map(round_split_coefficient)
    # The coefficient sits on the ex-date; rows before it are divided by it.
    later = coefficients[::-1].cumprod()[::-1].shift(-1, fill_value=1.0)
    return later.astype(float)
