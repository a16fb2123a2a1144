"""The feature kernel: indicators and next-session targets for a whole panel in one pass.

Why it is shaped this way (measured by ``benchmarks/bench_features.py``, which holds the node to
1.5x bare TA-Lib calls at 500 symbols x 20 years):

- Work runs on NumPy arrays one symbol at a time, written straight into one float block whose
  rows become the output frame's columns: no full-size copy is made after the TA-Lib calls.
- Symbols are written from the right end of the block backwards, each overwriting the warm-up of
  the one written before it, so the kept rows end up contiguous and the warm-up is found with one
  NumPy call while the data is still in cache.
- The "already sorted?" check compares string object addresses before strings (``ctypes``):
  Parquet and ``np.repeat`` give one string object per symbol, and comparing millions of Python
  strings would cost more than several indicators.

To add an indicator, do not touch this module: add a :class:`~.registry.FeatureGroup` in
:mod:`.registry` (and its window parameters in ``core/params.py`` and
``conf/base/parameters_feature_engineering.yml``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stock_mlops.core import calendar, targets
from stock_mlops.core import columns as C
from stock_mlops.pipelines.feature_engineering.registry import Bars, FeatureGroup

# The float columns of prices, first rows of the feature block in this order (as in Bars).
FLOAT_PRICE_COLUMNS = [C.OPEN, C.HIGH, C.LOW, C.CLOSE, C.VOLUME]


@dataclass(frozen=True)
class Panel:
    """Bars sorted by symbol and date, with each symbol's row range ``[starts[i], ends[i])``."""

    frame: pd.DataFrame
    dates: np.ndarray  # datetime64[ns]
    starts: np.ndarray
    ends: np.ndarray


def sorted_panel(frame: pd.DataFrame) -> Panel:
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
    return Panel(frame, dates, starts, np.r_[starts[1:], len(frame)].astype(starts.dtype))


def _sorted_group_starts(symbols: np.ndarray, dates: np.ndarray) -> np.ndarray | None:
    """First row of each symbol when rows are grouped by ascending symbol with strictly
    increasing dates inside each group, else None."""
    if len(symbols) == 0:
        return np.zeros(0, dtype=np.int64)
    new_symbol = np.empty(len(symbols), dtype=bool)
    new_symbol[0] = True
    new_symbol[1:] = _differs_from_previous(symbols)
    if not (new_symbol[1:] | (dates[1:] > dates[:-1])).all():
        return None
    starts = np.flatnonzero(new_symbol)
    firsts = symbols[starts]
    try:
        ascending = bool((firsts[1:] > firsts[:-1]).all())
    except TypeError:  # symbols of mixed types: let pandas' sort order them
        return None
    return starts if ascending else None


def _differs_from_previous(values: np.ndarray) -> np.ndarray:
    """``values[1:] != values[:-1]``, quick on object arrays whose equal strings are one object.

    Comparing millions of Python strings costs tens of milliseconds, more than several TA-Lib
    indicators. The rows of one symbol nearly always hold the same string object (pandas,
    pyarrow and ``np.repeat`` all reuse it), so the objects' addresses are compared first and
    the strings only where the addresses differ.
    """
    if values.dtype != object or len(values) < 2:
        return values[1:] != values[:-1]
    values = np.ascontiguousarray(values)
    # The array's storage is one pointer per element; read it as integers (no copy, read-only
    # use while ``values`` is alive).
    addresses = np.ctypeslib.as_array(
        ctypes.cast(values.ctypes.data, ctypes.POINTER(ctypes.c_size_t)), shape=(len(values),)
    )
    candidates = np.flatnonzero(addresses[1:] != addresses[:-1])
    if len(candidates) > len(values) // 8:  # mostly distinct objects: compare every string
        return values[1:] != values[:-1]
    differs = np.zeros(len(values) - 1, dtype=bool)
    differs[candidates] = values[candidates + 1] != values[candidates]
    return differs


def indicator_block(
    panel: Panel,
    groups: list[FeatureGroup],
    n_features: int,
    *,
    drop_warmup: bool,
    extra_rows: int = 0,
) -> tuple[np.ndarray, list[slice | np.ndarray]]:
    """Copies the prices and computes every feature group, symbol by symbol, into one block.

    Args:
        panel: Sorted bars.
        groups: The registry's feature groups.
        n_features: Number of feature columns the groups produce.
        drop_warmup: Keep only rows where every feature is defined (never fill them).
        extra_rows: Spare rows at the bottom of the block for the caller (targets).

    Returns:
        ``values`` of shape ``(5 + n_features + extra_rows, rows kept)`` holding the kept rows'
        open, high, low, close, volume, then the features; and for each symbol the panel rows
        it kept (a slice, or their positions when an undefined value sat inside the series).
    """
    frame = panel.frame
    prices = [frame[c].to_numpy(dtype=np.float64) for c in FLOAT_PRICE_COLUMNS]
    n_columns = len(prices) + n_features
    block = np.empty((n_columns + extra_rows, len(frame)))
    features = block[len(prices) : n_columns]
    # Symbols are written from the right end backwards, whole, so that the next one written
    # overwrites the warm-up of the previous: the kept rows end up contiguous, warm-up found
    # with one NumPy call on data still in cache. The columns left of the last symbol's kept
    # rows are never touched and cost no memory.
    right = len(frame)
    kept: list[slice | np.ndarray] = []
    for start, end in zip(panel.starts[::-1], panel.ends[::-1], strict=True):
        bars = Bars(*(column[start:end] for column in prices), dates=panel.dates[start:end])
        columns = [bars.open, bars.high, bars.low, bars.close, bars.volume]
        columns += [output for group in groups for output in group.compute(bars)]
        if len(columns) != n_columns:
            raise ValueError(
                f"the feature registry produced {len(columns) - len(prices)} columns, "
                f"not {n_features}"
            )
        left = right - (end - start)
        for k, column in enumerate(columns):
            block[k, left:right] = column
        first = 0
        if drop_warmup:
            warming = np.isnan(features[:, left:right]).any(axis=0)
            first = int(warming.argmin()) if len(warming) else 0
            if warming[first:].any():  # a gap inside the series (never on clean bars)
                ready = np.flatnonzero(~warming)
                block[:, right - len(ready) : right] = block[:, left:right][:, ready]
                kept.append(ready + start)
                right -= len(ready)
                continue
        kept.append(slice(start + first, end))
        right = left + first
    kept.reverse()
    return block[:, right:], kept


def kept_counts(kept: list[slice | np.ndarray]) -> np.ndarray:
    """How many rows each symbol kept."""
    return np.array(
        [k.stop - k.start if isinstance(k, slice) else len(k) for k in kept], dtype=np.int64
    )


def _rows(kept: list[slice | np.ndarray]) -> np.ndarray:
    """The kept panel rows, ascending."""
    parts = [np.arange(k.start, k.stop) if isinstance(k, slice) else k for k in kept]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def next_session_targets(
    panel: Panel,
    kept: list[slice | np.ndarray],
    dates: np.ndarray,
    close: np.ndarray,
    direction_band: float,
    out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Next-session targets of the ``kept`` panel rows, whose ``dates`` and ``close`` are
    given; close and return go into ``out[0]`` and ``out[1]``.

    A target exists only when the symbol's next bar is the next NYSE session, so a missing
    session never borrows a later bar, and the last bar of a symbol has none.

    Returns:
        ``target_date`` (datetime64[ns]) and the direction labels (object).
    """
    target_date = calendar.next_sessions_array(dates)
    target_close, target_return = out[0], out[1]
    if all(isinstance(k, slice) and k.stop == end for k, end in zip(kept, panel.ends)):
        # Every symbol kept a run of rows up to its last bar (always, on clean bars): a row's
        # next bar is the next row, read in place without gathering.
        no_target = np.empty(len(dates), dtype=bool)
        np.not_equal(dates[1:], target_date[:-1], out=no_target[:-1])
        target_close[:-1] = close[1:]
        counts = kept_counts(kept)
        last_kept = np.cumsum(counts)[counts > 0] - 1
    else:
        rows = _rows(kept)
        following = np.minimum(rows + 1, max(len(panel.frame) - 1, 0))
        no_target = panel.dates[following] != target_date
        np.take(panel.frame[C.CLOSE].to_numpy(dtype=np.float64), following, out=target_close)
        is_last_bar = np.zeros(len(panel.frame), dtype=bool)
        is_last_bar[panel.ends - 1] = True
        last_kept = np.flatnonzero(is_last_bar[rows])
    # A symbol's last bar is followed by another symbol's bar: never its target.
    no_target[last_kept] = True
    target_close[no_target] = np.nan
    np.divide(target_close, close, out=target_return)
    target_return -= 1.0
    return target_date, targets.direction_labels(target_return, direction_band)


def feature_frame(
    panel: Panel, kept: list[slice | np.ndarray], columns: dict[str, np.ndarray]
) -> pd.DataFrame:
    """A ``symbol`` column for the ``kept`` rows followed by ``columns``, none of them copied.

    Each float column is a row of the block: at 500 symbols x 20 years one copy of the block
    costs more than several indicators, and consolidating same-typed columns copies.
    """
    symbols = panel.frame[C.SYMBOL].to_numpy()[panel.starts]
    # Rows are grouped by symbol: repeating each symbol is cheaper than gathering strings.
    return pd.DataFrame({C.SYMBOL: np.repeat(symbols, kept_counts(kept)), **columns}, copy=False)
