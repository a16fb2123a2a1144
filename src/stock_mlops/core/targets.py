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


def direction(returns: pd.Series, band: float) -> pd.Series:
    """up / down / flat for returns outside / inside ``[-band, band]`` (NaN stays NaN)."""
    labels = np.select([returns > band, returns < -band], [C.UP, C.DOWN], C.FLAT)
    return pd.Series(labels, index=returns.index, dtype=object).where(returns.notna())
