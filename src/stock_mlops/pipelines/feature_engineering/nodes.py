"""Nodes of the feature_engineering pipeline: indicators, next-day targets, warm-up removal."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import calendar, targets
from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.registry import Bars, feature_specs

logger = logging.getLogger(__name__)


def compute_indicators(prices: pd.DataFrame, params: FeatureEngineeringParams) -> pd.DataFrame:
    """Adds every registry feature to ``prices``, symbol by symbol, oldest bar first.

    Args:
        prices: Adjusted bars, long format (any row order).
        params: Feature parameters (windows).

    Returns:
        A new frame sorted by symbol and date, with one column per feature; warm-up rows keep
        NaN here and are removed by :func:`drop_warmup`.
    """
    missing = [c for c in C.PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"prices lack column(s) {missing}")
    if prices.duplicated([C.SYMBOL, C.DATE]).any():
        raise ValueError("prices hold more than one bar for a symbol and date")
    frame = prices[C.PRICE_COLUMNS].sort_values([C.SYMBOL, C.DATE], kind="stable")
    frame = frame.reset_index(drop=True)

    groups = feature_specs(params.indicators, params.calendar_features)
    names = [name for group in groups for name in group.names]
    values = np.full((len(frame), len(names)), np.nan)
    arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in C.OHLC + [C.VOLUME]}
    dates = frame[C.DATE].to_numpy(dtype="datetime64[ns]")
    symbols = frame[C.SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]])
    ends = np.r_[starts[1:], len(frame)]
    for start, end in zip(starts, ends, strict=True):
        bars = Bars(
            open=arrays[C.OPEN][start:end],
            high=arrays[C.HIGH][start:end],
            low=arrays[C.LOW][start:end],
            close=arrays[C.CLOSE][start:end],
            volume=arrays[C.VOLUME][start:end],
            dates=dates[start:end],
        )
        column = 0
        for group in groups:
            for output in group.compute(bars):
                values[start:end, column] = output
                column += 1
    return pd.concat([frame, pd.DataFrame(values, columns=names)], axis=1)


def add_targets(frame: pd.DataFrame, direction_band: float) -> pd.DataFrame:
    """Adds the next trading day's close, return and direction per symbol.

    A target exists only when the symbol's next bar is the next NYSE session; the last bar of
    each symbol has none (it is what inference predicts from) but gets its ``target_date``.

    Args:
        frame: Bars sorted by symbol and date.
        direction_band: ``|return| <= band`` is labelled flat.

    Returns:
        A new frame with ``target_date`` and the three target columns.
    """
    target_date = calendar.next_sessions(frame[C.DATE])
    by_symbol = frame.groupby(C.SYMBOL, sort=False)
    next_date = by_symbol[C.DATE].shift(-1)
    next_close = by_symbol[C.CLOSE].shift(-1)
    consecutive = next_date.eq(target_date)
    target_close = next_close.where(consecutive)
    target_return = target_close / frame[C.CLOSE] - 1.0
    direction = targets.direction(target_return, direction_band)
    return frame.assign(
        **{
            C.TARGET_DATE: target_date,
            C.TARGET_CLOSE: target_close,
            C.TARGET_RETURN: target_return,
            C.TARGET_DIRECTION: direction,
        }
    )


def drop_warmup(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Removes rows where any feature is still warming up (never fills them)."""
    ready = frame[feature_columns].notna().all(axis=1)
    return frame[ready].reset_index(drop=True)


def build_features(prices: pd.DataFrame, feature_engineering: dict[str, Any]) -> pd.DataFrame:
    """Indicators, targets and warm-up removal: ``prices`` -> ``features``.

    Args:
        prices: The ``prices`` dataset.
        feature_engineering: ``params:feature_engineering``.

    Returns:
        The ``features`` dataset: one row per symbol and date.
    """
    params = FeatureEngineeringParams.parse(feature_engineering, "feature_engineering")
    with_indicators = compute_indicators(prices, params)
    feature_columns = list(with_indicators.columns[len(C.PRICE_COLUMNS) :])
    with_targets = add_targets(with_indicators, params.targets.direction_band)
    features = drop_warmup(with_targets, feature_columns)
    if features.empty:
        raise ValueError(
            "no rows left after the indicator warm-up: each symbol needs more bars than the "
            "longest indicator window"
        )
    logger.info(
        "features: %d rows, %d feature columns, %d symbols (warm-up dropped %d rows)",
        len(features),
        len(feature_columns),
        features[C.SYMBOL].nunique(),
        len(with_targets) - len(features),
    )
    return features
