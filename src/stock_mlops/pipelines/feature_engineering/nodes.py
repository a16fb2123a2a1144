"""Nodes of the feature_engineering pipeline: indicators, next-day targets, warm-up removal.

What is computed is listed in :mod:`.registry` (one entry per feature group); how it is computed
fast is in :mod:`.kernel`. The nodes here say what goes in and what comes out.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.kernel import (
    FLOAT_PRICE_COLUMNS,
    feature_frame,
    indicator_block,
    next_session_targets,
    sorted_panel,
)
from stock_mlops.pipelines.feature_engineering.registry import feature_kinds, feature_specs

logger = logging.getLogger(__name__)


def compute_indicators(prices: pd.DataFrame, params: FeatureEngineeringParams) -> pd.DataFrame:
    """Adds every registry feature to ``prices``, symbol by symbol, oldest bar first.

    Args:
        prices: Adjusted bars, long format (any row order).
        params: Feature parameters (windows).

    Returns:
        A new frame sorted by symbol and date, with one column per feature; warm-up rows keep
        NaN here and are removed by :func:`drop_warmup`.

    Raises:
        ValueError: On missing columns or more than one bar for a symbol and date.
    """
    panel = sorted_panel(_price_columns(prices))
    groups = feature_specs(params.indicators, params.calendar_features)
    names = [name for group in groups for name in group.names]
    values, kept = indicator_block(panel, groups, len(names), drop_warmup=False)
    columns = dict(zip(FLOAT_PRICE_COLUMNS + names, values, strict=True))
    return feature_frame(panel, kept, {C.DATE: panel.dates, **columns})


def add_targets(frame: pd.DataFrame, direction_band: float) -> pd.DataFrame:
    """Adds the next trading day's close, return and direction per symbol.

    A target exists only when the symbol's next bar is the next NYSE session; the last bar of
    each symbol has none (it is what inference predicts from) but gets its ``target_date``.
    The result does not depend on the input's row order.

    Args:
        frame: Bars of one or more symbols with at least ``symbol, date, close`` (any order).
        direction_band: ``|return| <= band`` is labelled flat.

    Returns:
        A new frame sorted by symbol and date with ``target_date`` and the three target columns.
    """
    panel = sorted_panel(frame)
    kept = [slice(start, end) for start, end in zip(panel.starts, panel.ends, strict=True)]
    values = np.empty((2, len(panel.frame)))
    close = panel.frame[C.CLOSE].to_numpy(dtype=np.float64)
    target_date, direction = next_session_targets(
        panel, kept, panel.dates, close, direction_band, values
    )
    return panel.frame.assign(
        **{
            C.TARGET_DATE: target_date,
            C.TARGET_CLOSE: values[0],
            C.TARGET_RETURN: values[1],
            C.TARGET_DIRECTION: direction,
        }
    )


def drop_warmup(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Removes rows where any feature is still warming up (never fills them).

    Args:
        frame: Indicators with their warm-up rows.
        feature_columns: The columns that must all be defined.

    Returns:
        The rows where every feature is defined, re-indexed.
    """
    ready = frame[feature_columns].notna().all(axis=1)
    return frame[ready].reset_index(drop=True)


def build_features(prices: pd.DataFrame, params: FeatureEngineeringParams) -> pd.DataFrame:
    """Indicators, targets and warm-up removal: ``prices`` -> ``features``.

    Equal to ``drop_warmup(add_targets(compute_indicators(...)))``, computed in one pass.

    Args:
        prices: The ``prices`` dataset (any row order).
        params: ``params:feature_engineering``.

    Returns:
        The ``features`` dataset: one row per symbol and date, sorted by symbol and date.

    Raises:
        ValueError: On malformed prices, or when no symbol has more bars than the warm-up.
    """
    panel = sorted_panel(_price_columns(prices))
    groups = feature_specs(params.indicators, params.calendar_features)
    names = [name for group in groups for name in group.names]
    values, kept = indicator_block(panel, groups, len(names), drop_warmup=True, extra_rows=2)
    dates = np.concatenate([panel.dates[k] for k in kept]) if kept else panel.dates[:0]
    if len(dates) == 0:
        raise ValueError(
            "no rows left after the indicator warm-up: each symbol needs more bars than the "
            "longest indicator window"
        )
    n_columns = len(FLOAT_PRICE_COLUMNS) + len(names)
    close = values[FLOAT_PRICE_COLUMNS.index(C.CLOSE)]
    target_date, direction = next_session_targets(
        panel, kept, dates, close, params.targets.direction_band, values[n_columns:]
    )
    features = feature_frame(
        panel,
        kept,
        {
            C.DATE: dates,
            **dict(zip(FLOAT_PRICE_COLUMNS + names, values[:n_columns], strict=True)),
            C.TARGET_DATE: target_date,
            C.TARGET_CLOSE: values[n_columns],
            C.TARGET_RETURN: values[n_columns + 1],
            C.TARGET_DIRECTION: direction,
        },
    )
    logger.info(
        "features: %d rows, %d feature columns, %d symbols (warm-up dropped %d rows)",
        len(features),
        len(names),
        len(panel.starts),
        len(panel.frame) - len(features),
    )
    return features


def describe_features(params: FeatureEngineeringParams) -> dict[str, str]:
    """The kind of every feature column (``return``, ``oscillator``, ``price_level``, ...).

    Other pipelines choose features by what they measure (monitoring tests only scale-free kinds
    for drift) without importing this pipeline's registry.

    Args:
        params: ``params:feature_engineering``.

    Returns:
        The ``feature_kinds`` document: feature column -> kind.
    """
    return feature_kinds(params.indicators, params.calendar_features)


def _price_columns(prices: pd.DataFrame) -> pd.DataFrame:
    """Returns ``prices`` itself (columns are read by name; other columns are ignored)."""
    missing = [c for c in C.PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"prices lack column(s) {missing}")
    return prices
