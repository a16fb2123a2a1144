"""Benchmark: feature engineering and validation at 500 symbols x 20 years of daily bars.

Run it from the project root::

    .venv/bin/python benchmarks/bench_features.py            # full size (about 2.5 M bars)
    .venv/bin/python benchmarks/bench_features.py --symbols 50 --years 5 --repeats 3

Data: ``_synthetic.synthetic_prices`` resamples real daily bars of the bundled snapshot (seeded
i.i.d. bootstrap, see that module). The panel then makes the round trip through Parquet that
the ``prices`` dataset makes between the two pipelines, so ``build_features`` gets the frame
it gets in a Kedro run. Validation reads the same panel as one Yahoo-style CSV payload per
symbol, as the raw-price archive would hand it over.

What is measured (wall clock, ``time.perf_counter``; the machine is shared, so every figure is
the median of ``--repeats`` runs, the two sides of each ratio run back to back in each repeat
and the ratio is the median of the per-repeat ratios; the first full-size call of each side is
timed and shown separately):

- ``build_features``: the pipeline's node, prices -> features (indicators, targets, warm-up
  dropped, output frame assembled).
- TA-Lib floor: the same TA-Lib calls the registry makes (RSI, EMA, SMA, DEMA, MACD, BBANDS,
  ATR, OBV, STDDEV of log returns, SMA and STDDEV of volume) on each symbol's arrays in a plain
  loop, outputs kept in a list. No pandas, no targets, no non-TA-Lib features: a lower bound.
- ``clean_prices``: the ingestion node on the CSV payloads (parse, validate, adjust).
- CSV floor: ``pandas.read_csv`` of the same payloads, nothing else.
- Fresh memory: allocating and filling an array the size of the feature block, three times,
  before anything else large is allocated; the first time shows what the first call of a
  process pays to touch new memory on this machine.
- Memory, in separate untimed runs: the peak resident set size of the whole process during
  each node (Linux ``VmHWM``, reset before the node; it includes the input panel and every
  library loaded), and for ``build_features`` the peak of traced allocations (``tracemalloc``,
  which includes NumPy buffers; not run on ``clean_prices``, whose millions of small Python
  strings make tracing take minutes).

Targets (from the issue): ``build_features`` within 1.5x the TA-Lib floor, under 2 GB, and
validation scaling the same way (``clean_prices`` against its read_csv floor). The script exits
non-zero when it cannot run; with ``--strict`` also when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synthetic import DEFAULT_SEED, as_raw_batch, synthetic_prices  # noqa: E402

from stock_mlops.core import calendar  # noqa: E402
from stock_mlops.core import columns as C  # noqa: E402
from stock_mlops.core.params import (  # noqa: E402
    DataIngestionParams,
    FeatureEngineeringParams,
    IndicatorParams,
)
from stock_mlops.pipelines.data_ingestion.nodes import clean_prices  # noqa: E402
from stock_mlops.pipelines.feature_engineering.nodes import build_features  # noqa: E402

RATIO_TARGET = 1.5
MEMORY_TARGET_BYTES = 2 * 1024**3


def talib_floor(prices: pd.DataFrame, p: IndicatorParams) -> list[list[np.ndarray]]:
    """The registry's TA-Lib calls on each symbol's arrays in a plain loop (rows pre-sorted).

    Args:
        prices: Bars sorted by symbol and date.
        p: Indicator windows (the defaults of the project).

    Returns:
        Every output, per symbol (kept, as a caller would keep them).
    """
    symbols = prices[C.SYMBOL].to_numpy()
    starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]])
    ends = np.r_[starts[1:], len(prices)]
    high, low, close, volume = (
        prices[c].to_numpy(dtype=np.float64) for c in (C.HIGH, C.LOW, C.CLOSE, C.VOLUME)
    )
    results = []
    for start, end in zip(starts, ends, strict=True):
        h, lo, c, v = high[start:end], low[start:end], close[start:end], volume[start:end]
        log_return = np.log(c[1:] / c[:-1])
        results.append(
            [
                talib.RSI(c, p.rsi_window),
                talib.EMA(c, p.ema_window),
                talib.SMA(c, p.sma_window),
                talib.DEMA(c, p.dema_window),
                *talib.MACD(c, p.macd.fast, p.macd.slow, p.macd.signal),
                *talib.BBANDS(c, p.bollinger.window, p.bollinger.num_std, p.bollinger.num_std, 0),
                talib.ATR(h, lo, c, p.atr_window),
                talib.OBV(c, v),
                talib.STDDEV(log_return, p.volatility_window, 1.0),
                talib.SMA(v, p.volume_zscore_window),
                talib.STDDEV(v, p.volume_zscore_window, 1.0),
            ]
        )
    return results


def as_catalog_loads_it(prices: pd.DataFrame) -> pd.DataFrame:
    """``prices`` written to Parquet and read back, as the catalog hands it to the next node
    (among other things pyarrow gives each distinct symbol one shared string object)."""
    buffer = io.BytesIO()
    prices.to_parquet(buffer, index=False)
    buffer.seek(0)
    return pd.read_parquet(buffer)


def csv_floor(raw: dict[str, Any]) -> list[pd.DataFrame]:
    """Only reading every payload's CSV bytes with pandas: the floor under ``clean_prices``."""
    return [
        pd.read_csv(io.BytesIO(payload.content))
        for payloads in raw.payloads.values()
        for payload in payloads
    ]


def timed(func: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call (the result is dropped before returning)."""
    gc.collect()
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def paired(
    subject: Callable[[], Any], floor: Callable[[], Any], repeats: int
) -> tuple[list[float], list[float]]:
    """Times ``subject`` and ``floor`` back to back ``repeats`` times (alternating order)."""
    subject_times, floor_times = [], []
    for i in range(repeats):
        if i % 2:
            floor_times.append(timed(floor))
            subject_times.append(timed(subject))
        else:
            subject_times.append(timed(subject))
            floor_times.append(timed(floor))
    return subject_times, floor_times


def fresh_memory_fill(n_bytes: int, repeats: int = 3) -> list[float]:
    """Seconds to allocate and fill an array of ``n_bytes``, repeatedly: the first fill shows
    what touching never-used memory costs on this machine (large on a lazily backed VM), the
    later ones what a warm call pays for its fresh output."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block = np.empty(n_bytes // 8)
        block.fill(1.0)
        times.append(time.perf_counter() - start)
        del block
    return times


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss(func: Callable[[], Any]) -> int | None:
    """The process's peak resident set size during one call, in bytes (None off Linux).

    Linux's ``VmHWM`` after resetting it (``/proc/self/clear_refs``); where the reset is not
    allowed it is the process's lifetime peak, an upper bound.
    """
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    result = func()
    del result
    hwm = _status_kib("VmHWM")
    return None if hwm is None else hwm * 1024


def peak_traced(func: Callable[[], Any]) -> int:
    """Peak bytes allocated (Python objects and NumPy buffers) during one call."""
    gc.collect()
    tracemalloc.start()
    result = func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak


def main(argv: list[str] | None = None) -> int:
    """Builds the panel, runs the measurements and prints the table.

    Returns:
        0 when measured (and, with ``--strict``, every target met); 2 when a target is missed.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7, help="repeats of build_features")
    parser.add_argument("--clean-repeats", type=int, default=3, help="repeats of clean_prices")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    args = parser.parse_args(argv)
    logging.getLogger("stock_mlops").setLevel(logging.WARNING)  # per-run INFO lines

    calendar.next_session(pd.Timestamp("2020-01-02"))  # load the NYSE calendar outside timings
    built = time.perf_counter()
    prices = as_catalog_loads_it(synthetic_prices(args.symbols, args.years, args.seed))
    raw = as_raw_batch(prices)
    rows = len(prices)
    print(
        f"panel: {args.symbols} symbols x {args.years} years = {rows:,} bars "
        f"(seed {args.seed}, built in {time.perf_counter() - built:.1f} s); "
        f"medians of {args.repeats} (features) and {args.clean_repeats} (validation) repeats"
    )
    indicator_params = IndicatorParams()
    # Roughly the size of build_features' float block, measured before any large allocation.
    fills = fresh_memory_fill(27 * rows * 8)
    # The first full-size call of each side pays one-off costs (first touch of fresh memory):
    # reported on its own line, kept out of the medians.
    cold_floor = timed(lambda: talib_floor(prices, indicator_params))
    cold_feat = timed(lambda: build_features(prices, FeatureEngineeringParams()))

    feat_times, floor_times = paired(
        lambda: build_features(prices, FeatureEngineeringParams()),
        lambda: talib_floor(prices, indicator_params),
        args.repeats,
    )
    clean_times, read_times = paired(
        lambda: clean_prices(raw, DataIngestionParams(), None),
        lambda: csv_floor(raw),
        args.clean_repeats,
    )
    feat_traced = peak_traced(lambda: build_features(prices, FeatureEngineeringParams()))
    feat_rss = peak_rss(lambda: build_features(prices, FeatureEngineeringParams()))
    clean_rss = peak_rss(lambda: clean_prices(raw, DataIngestionParams(), None))

    feature_ratios = [f / b for f, b in zip(feat_times, floor_times, strict=True)]
    feature_ratio = statistics.median(feature_ratios)
    clean_ratios = [c / r for c, r in zip(clean_times, read_times, strict=True)]
    clean_ratio = statistics.median(clean_ratios)

    def line(name: str, times: list[float], ratio: str, traced: str, rss: str) -> str:
        seconds = statistics.median(times)
        return (
            f"{name:<26}{seconds:>9.3f}{rows / seconds / 1e6:>10.2f}{ratio:>9}{traced:>11}{rss:>10}"
        )

    def gib(value: int | None) -> str:
        return "n/a" if value is None else f"{value / 1024**3:.2f}"

    print(f"{'step':<26}{'median s':>9}{'M rows/s':>10}{'ratio':>9}{'traced GB':>11}{'RSS GB':>10}")
    print(line("talib floor", floor_times, "1.00", "", ""))
    print(
        line("build_features", feat_times, f"{feature_ratio:.2f}", gib(feat_traced), gib(feat_rss))
    )
    # First calls come after the fill probe, which has paid for touching new memory.
    print(line("  first call, talib floor", [cold_floor], "1.00", "", ""))
    print(line("  first call, build_feat.", [cold_feat], f"{cold_feat / cold_floor:.2f}", "", ""))
    print(line("read_csv floor", read_times, "1.00", "", ""))
    print(line("clean_prices", clean_times, f"{clean_ratio:.2f}", "", gib(clean_rss)))
    print(
        "build_features / talib floor per repeat: "
        f"{', '.join(f'{r:.2f}' for r in feature_ratios)} (best {min(feature_ratios):.2f})"
    )
    print(
        "clean_prices / read_csv floor per repeat: "
        f"{', '.join(f'{r:.2f}' for r in clean_ratios)} (best {min(clean_ratios):.2f})"
    )

    print(
        f"allocate and fill {27 * rows * 8 / 1e6:.0f} MB: "
        f"{', '.join(f'{t * 1000:.0f} ms' for t in fills)} (first touch, then reused pages)"
    )

    feature_peak = max(feat_traced, feat_rss or 0)
    ratio_ok = feature_ratio <= RATIO_TARGET
    memory_ok = feature_peak < MEMORY_TARGET_BYTES
    clean_ok = clean_ratio <= RATIO_TARGET and (clean_rss or 0) < MEMORY_TARGET_BYTES
    print(
        f"target ratio <= {RATIO_TARGET}: {'met' if ratio_ok else 'MISSED'} ({feature_ratio:.2f}); "
        f"target peak < 2 GB: {'met' if memory_ok else 'MISSED'} ({gib(feature_peak)} GB); "
        f"validation within the same: {'met' if clean_ok else 'MISSED'} "
        f"({clean_ratio:.2f}, {gib(clean_rss)} GB)"
    )
    if args.strict and not (ratio_ok and memory_ok and clean_ok):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
