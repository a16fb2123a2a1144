"""Conversions between a model's output and a next-day close, return and direction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C


def implied_close(target: str, prediction: pd.Series, last_close: pd.Series) -> pd.Series:
    """The next-day close implied by a model output (NaN for direction classifiers)."""
    if target == C.TARGET_CLOSE:
        return prediction.astype(float)
    if target == C.TARGET_RETURN:
        return last_close * (1 + prediction.astype(float))
    return pd.Series(np.nan, index=prediction.index)


# Labels indexed by code: 0 down, 1 flat, 2 up, 3 no value.
_LABELS = np.array([C.DOWN, C.FLAT, C.UP, np.nan], dtype=object)


def direction_labels(returns: np.ndarray, band: float) -> np.ndarray:
    """up / down / flat for returns outside / inside ``[-band, band]``; NaN stays NaN."""
    returns = np.asarray(returns, dtype=float)
    with np.errstate(invalid="ignore"):
        # Booleans viewed as 0/1 bytes: no intermediate copies on millions of rows.
        codes = (returns > band).view(np.int8) + 1
        codes -= (returns < -band).view(np.int8)
    codes[np.isnan(returns)] = 3
    return _LABELS[codes]


def direction(returns: pd.Series, band: float) -> pd.Series:
    """:func:`direction_labels` for a Series, keeping its index."""
    return pd.Series(direction_labels(returns.to_numpy(dtype=float), band), index=returns.index)
