"""Nodes of the feature_engineering pipeline: indicators, next-day targets, warm-up removal.

The work runs on NumPy arrays one symbol at a time and the output frame is assembled once, with
no intermediate full-size pandas copies: at 500 symbols x 20 years a single copy of the table
costs more than all the TA-Lib calls together (see ``benchmarks/bench_features.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import calendar, targets
from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.registry import Bars, FeatureGroup, feature_specs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Panel:
    """Bars sorted by symbol and date, with each symbol's row range ``[starts[i], ends[i])``."""

    frame: pd.DataFrame
    dates: np.ndarray  # datetime64[ns]
    starts: np.ndarray
    ends: np.ndarray


def _panel(frame: pd.DataFrame) -> _Panel:
    """Checks the key columns and sorts by symbol and date only when the rows are not already.

    Raises:
        ValueError: On a missing date or more than one row for a symbol and date.
    """
    symbols = frame[C.SYMBOL].to_numpy()
    dates = frame[C.DATE].to_numpy(dtype="datetime64[ns]")
    if np.isnat(dates).any():
        raise ValueError("prices hold rows without a date")
    starts = _sorted_group_starts(symbols, dates)
    if starts is None:
        frame = frame.sort_values([C.SYMBOL, C.DATE], kind="stable").reset_index(drop=True)
        symbols = frame[C.SYMBOL].to_numpy()
        dates = frame[C.DATE].to_numpy(dtype="datetime64[ns]")
        starts = _sorted_group_starts(symbols, dates)
        if starts is None:
            raise ValueError("prices hold more than one bar for a symbol and date")
    return _Panel(frame, dates, starts, np.r_[starts[1:], len(frame)].astype(starts.dtype))


def _sorted_group_starts(symbols: np.ndarray, dates: np.ndarray) -> np.ndarray | None:
    """First row of each symbol when rows are grouped by ascending symbol with strictly
    increasing dates inside each group, else None."""
    if len(symbols) == 0:
        return np.zeros(0, dtype=np.int64)
    new_symbol = np.empty(len(symbols), dtype=bool)
    new_symbol[0] = True
    np.not_equal(symbols[1:], symbols[:-1], out=new_symbol[1:])
    if not (new_symbol[1:] | (dates[1:] > dates[:-1])).all():
        return None
    starts = np.flatnonzero(new_symbol)
    firsts = symbols[starts]
    try:
        ascending = bool((firsts[1:] > firsts[:-1]).all())
    except TypeError:  # symbols of mixed types: let pandas' sort order them
        return None
    return starts if ascending else None


def _indicator_block(
    panel: _Panel,
    groups: list[FeatureGroup],
    n_features: int,
    *,
    drop_warmup: bool,
    extra_rows: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Computes every feature group symbol by symbol into one ``(features, rows)`` array.

    Args:
        panel: Sorted bars.
        groups: The registry's feature groups.
        n_features: Number of feature columns the groups produce.
        drop_warmup: Keep only rows where every feature is defined (never fill them).
        extra_rows: Spare rows at the bottom of the array for the caller (targets).

    Returns:
        ``values`` of shape ``(n_features + extra_rows, len(rows))`` and the panel ``rows`` they
        belong to (ascending).
    """
    frame = panel.frame
    arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in (*C.OHLC, C.VOLUME)}
    # Rows never written (warm-up) are never touched, so the spare capacity costs no memory.
    block = np.empty((n_features + extra_rows, len(frame)))
    kept: list[np.ndarray] = []
    filled = 0
    for start, end in zip(panel.starts, panel.ends, strict=True):
        bars = Bars(
            open=arrays[C.OPEN][start:end],
            high=arrays[C.HIGH][start:end],
            low=arrays[C.LOW][start:end],
            close=arrays[C.CLOSE][start:end],
            volume=arrays[C.VOLUME][start:end],
            dates=panel.dates[start:end],
        )
        outputs = [output for group in groups for output in group.compute(bars)]
        if len(outputs) != n_features:
            raise ValueError(
                f"the feature registry produced {len(outputs)} columns, not {n_features}"
            )
        if not drop_warmup:
            for k, output in enumerate(outputs):
                block[k, start:end] = output
            filled = end
            continue
        warming = np.zeros(end - start, dtype=bool)
        for output in outputs:
            warming |= np.isnan(output)
        first = int(warming.argmin()) if len(warming) else 0
        # Each output goes straight into its row of the block: no stacked intermediate copy.
        if not warming[first:].any():  # the warm-up is a prefix (always, on clean bars)
            count = len(warming) - first
            for k, output in enumerate(outputs):
                block[k, filled : filled + count] = output[first:]
            kept.append(np.arange(start + first, end))
        else:
            ready = np.flatnonzero(~warming)
            for k, output in enumerate(outputs):
                block[k, filled : filled + len(ready)] = output[ready]
            kept.append(ready + start)
        filled += len(kept[-1])
    rows = np.concatenate(kept) if drop_warmup and kept else np.arange(filled)
    return block[:, :filled], rows


def _targets(
    panel: _Panel, rows: np.ndarray, direction_band: float, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Next-session targets of ``rows``; close and return go into ``out[0]`` and ``out[1]``.

    A target exists only when the symbol's next bar is the next NYSE session, so a missing
    session never borrows a later bar, and the last bar of a symbol has none.

    Returns:
        ``target_date`` (datetime64[ns]) and the direction labels (object).
    """
    close = panel.frame[C.CLOSE].to_numpy(dtype=np.float64)
    target_date = calendar.next_sessions_array(panel.dates[rows])
    has_next = np.ones(len(panel.frame), dtype=bool)
    has_next[panel.ends - 1] = False
    following = np.minimum(rows + 1, max(len(panel.frame) - 1, 0))
    consecutive = has_next[rows] & (panel.dates[following] == target_date)
    target_close, target_return = out[0], out[1]
    np.take(close, following, out=target_close)
    target_close[~consecutive] = np.nan
    np.divide(target_close, close[rows], out=target_return)
    target_return -= 1.0
    return target_date, targets.direction_labels(target_return, direction_band)


def _assemble(
    panel: _Panel, rows: np.ndarray, names: list[str], values: np.ndarray
) -> pd.DataFrame:
    """Price columns of ``rows`` followed by the float columns ``names`` held in ``values``."""
    # The float block becomes the frame's storage as is (no copy of the largest part).
    out = pd.DataFrame(values.T, columns=names, copy=False)
    # Rows are grouped by symbol: repeating each symbol is cheaper than gathering strings.
    per_symbol = np.diff(np.searchsorted(rows, np.r_[panel.starts, len(panel.frame)]))
    symbols = panel.frame[C.SYMBOL].to_numpy()[panel.starts]
    out.insert(0, C.SYMBOL, np.repeat(symbols, per_symbol))
    for position, column in enumerate(C.PRICE_COLUMNS[1:], start=1):
        out.insert(position, column, panel.frame[column].to_numpy()[rows])
    return out


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
    panel = _panel(_price_columns(prices))
    groups = feature_specs(params.indicators, params.calendar_features)
    names = [name for group in groups for name in group.names]
    values, rows = _indicator_block(panel, groups, len(names), drop_warmup=False)
    return _assemble(panel, rows, names, values)


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
    panel = _panel(frame)
    rows = np.arange(len(panel.frame))
    values = np.empty((2, len(rows)))
    target_date, direction = _targets(panel, rows, direction_band, values)
    return panel.frame.assign(
        **{
            C.TARGET_DATE: target_date,
            C.TARGET_CLOSE: values[0],
            C.TARGET_RETURN: values[1],
            C.TARGET_DIRECTION: direction,
        }
    )


def drop_warmup(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Removes rows where any feature is still warming up (never fills them)."""
    ready = frame[feature_columns].notna().all(axis=1)
    return frame[ready].reset_index(drop=True)


def build_features(prices: pd.DataFrame, feature_engineering: dict[str, Any]) -> pd.DataFrame:
    """Indicators, targets and warm-up removal: ``prices`` -> ``features``.

    Equal to ``drop_warmup(add_targets(compute_indicators(...)))``, computed in one pass.

    Args:
        prices: The ``prices`` dataset (any row order).
        feature_engineering: ``params:feature_engineering``.

    Returns:
        The ``features`` dataset: one row per symbol and date, sorted by symbol and date.

    Raises:
        ValueError: On malformed prices, or when no symbol has more bars than the warm-up.
    """
    params = FeatureEngineeringParams.parse(feature_engineering, "feature_engineering")
    panel = _panel(_price_columns(prices))
    groups = feature_specs(params.indicators, params.calendar_features)
    names = [name for group in groups for name in group.names]
    values, rows = _indicator_block(panel, groups, len(names), drop_warmup=True, extra_rows=2)
    if len(rows) == 0:
        raise ValueError(
            "no rows left after the indicator warm-up: each symbol needs more bars than the "
            "longest indicator window"
        )
    target_date, direction = _targets(
        panel, rows, params.targets.direction_band, values[len(names) :]
    )
    features = _assemble(panel, rows, [*names, C.TARGET_CLOSE, C.TARGET_RETURN], values)
    features.insert(len(C.PRICE_COLUMNS) + len(names), C.TARGET_DATE, target_date)
    features[C.TARGET_DIRECTION] = direction
    logger.info(
        "features: %d rows, %d feature columns, %d symbols (warm-up dropped %d rows)",
        len(features),
        len(names),
        len(panel.starts),
        len(panel.frame) - len(features),
    )
    return features


def _price_columns(prices: pd.DataFrame) -> pd.DataFrame:
    """Returns ``prices`` itself (columns are read by name; other columns are ignored)."""
    missing = [c for c in C.PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"prices lack column(s) {missing}")
    return prices
