"""Backtest at scale: N symbols x Y years of daily bars through the real decision node.

The bars are synthetic but realistic: every symbol replays blocks of real daily returns (close to
close, and the overnight gap to the open) resampled, with a fixed seed, from the bundled MAG7
snapshot, on the real NYSE sessions. The predictions are the next close shrunk towards the last
close plus noise (a weak model, see ``SKILL`` and ``NOISE``). Everything runs through
:func:`stock_mlops.pipelines.backtest.nodes.simulate`, i.e. the same ``decide_orders`` and
``LocalPaperBroker`` as the daily trading pipeline.

Each case runs in a fresh subprocess so that its peak memory (max RSS) is its own. Reported: the
median wall time of ``simulate`` over the repeats, the peak RSS of the case's process, and how time
grows with symbols and with years.

Usage::

    .venv/bin/python benchmarks/bench_backtest.py                 # the full grid
    .venv/bin/python benchmarks/bench_backtest.py --symbols 500 --years 10 --repeats 3
    .venv/bin/python benchmarks/bench_backtest.py --profile --symbols 100 --years 2
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

SEED = 20240101
BLOCK = 20  # sessions per resampled block: keeps short-range autocorrelation and volatility
# A weak but real model: predicted return = SKILL x realised next-day return + N(0, NOISE), which
# correlates about 0.05 with the realised return (an information coefficient a quant would keep).
SKILL, NOISE = 0.025, 0.01
TARGET_SECONDS, TARGET_BYTES = 60.0, 2 * 1024**3
END = "2023-12-29"
SYMBOL_GRID, YEAR_GRID = (50, 100, 250, 500), (2, 5, 10)
TRADING = {
    "sizing": "equal_weight",
    "top_k": 10,
    "threshold": 0.005,
    "risk": {"max_orders_per_run": 40},
    "local": {
        "initial_cash": 1_000_000.0,
        "fill_at": "next_open",
        "commission_bps": 1.0,
        "slippage_bps": 5.0,
    },
}


def real_returns() -> tuple[np.ndarray, np.ndarray]:
    """Daily close-to-close log returns and open-over-previous-close log gaps of the snapshot."""
    folder = resources.files("stock_mlops") / "snapshot" / "mag7"
    closes, gaps = [], []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".csv"):
            continue
        bars = pd.read_csv(io.BytesIO(entry.read_bytes()))
        close = np.log(bars["Close"].to_numpy(dtype=float))
        opens = np.log(bars["Open"].to_numpy(dtype=float))
        closes.append(np.diff(close))
        gaps.append(opens[1:] - close[:-1])
    return np.concatenate(closes), np.concatenate(gaps)


def sessions(years: int) -> pd.DatetimeIndex:
    """The last ``years`` x 252 NYSE sessions up to ``END``."""
    from stock_mlops.core import calendar

    every = calendar.sessions_between(pd.Timestamp("1995-01-03"), pd.Timestamp(END))
    return every[-(years * 252) :]


def make_data(n_symbols: int, years: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(prices, predictions)`` for ``n_symbols`` over ``years`` years (seeded)."""
    rng = np.random.default_rng(seed)
    returns, gaps = real_returns()
    dates = sessions(years)
    n_days = len(dates)
    n_blocks = math.ceil(n_days / BLOCK)
    starts = rng.integers(0, len(returns) - BLOCK, size=(n_symbols, n_blocks))
    index = (starts[:, :, None] + np.arange(BLOCK)).reshape(n_symbols, -1)[:, :n_days]
    first = rng.uniform(np.log(10.0), np.log(500.0), size=(n_symbols, 1))
    log_close = first + np.cumsum(returns[index], axis=1)
    log_open = np.concatenate([first, log_close[:, :-1]], axis=1) + gaps[index]
    close, open_ = np.exp(log_close), np.exp(log_open)
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)])
    prices = pd.DataFrame(
        {
            "symbol": np.repeat(symbols, n_days),
            "date": np.tile(dates.to_numpy(), n_symbols),
            "open": open_.ravel(),
            "high": np.maximum(open_, close).ravel(),
            "low": np.minimum(open_, close).ravel(),
            "close": close.ravel(),
            "volume": 1e6,
        }
    )
    # Predictions made from every close but the last, for the next session's close.
    last = close[:, :-1]
    realised = close[:, 1:] / last - 1
    noise = rng.normal(0.0, NOISE, size=(n_symbols, n_days - 1))
    predicted = last * (1 + SKILL * realised + noise)
    predictions = pd.DataFrame(
        {
            "symbol": np.repeat(symbols, n_days - 1),
            "feature_date": np.tile(dates[:-1].to_numpy(), n_symbols),
            "target_date": np.tile(dates[1:].to_numpy(), n_symbols),
            "last_close": last.ravel(),
            "prediction": predicted.ravel(),
            "predicted_direction": np.where(predicted > last, "up", "down").ravel(),
        }
    ).sort_values(["feature_date", "symbol"], kind="stable", ignore_index=True)
    return prices, predictions


def run_case(n_symbols: int, years: int, repeats: int) -> dict[str, Any]:
    """Times ``simulate`` on one case (in this process) and reports its peak RSS."""
    from stock_mlops.core.params import BacktestParams, TradingParams
    from stock_mlops.pipelines.backtest.nodes import simulate, summarise_backtest

    prices, predictions = make_data(n_symbols, years)
    params = TradingParams.parse(TRADING, "trading")
    rss_before = _peak_rss()
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        trades, equity = simulate(predictions, prices, params, "bench")
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    # Only the returns are read (a check that both sides simulated the same thing); no
    # permutation test: it is not part of what is timed.
    summary = summarise_backtest(trades, equity, {}, params, BacktestParams())
    return {
        "symbols": n_symbols,
        "years": years,
        "sessions": int(equity.shape[0]),
        "prediction_rows": int(len(predictions)),
        "repeats": repeats,
        "seconds_median": statistics.median(times),
        "seconds_all": times,
        # CPU time of this process: what the case costs, whatever else the shared cores run.
        "cpu_seconds_median": statistics.median(cpu),
        "cpu_seconds_all": cpu,
        "peak_rss_bytes": _peak_rss(),
        "rss_before_simulate_bytes": rss_before,
        "trades": int(len(trades)),
        "total_return": summary["total_return"],
        "benchmark_total_return": summary["benchmark_total_return"],
    }


def _peak_rss() -> int:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def in_subprocess(n_symbols: int, years: int, repeats: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--case", str(n_symbols), str(years)]
    command += ["--repeats", str(repeats)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile(n_symbols: int, years: int) -> None:
    import cProfile
    import pstats

    from stock_mlops.core.params import TradingParams
    from stock_mlops.pipelines.backtest.nodes import simulate

    prices, predictions = make_data(n_symbols, years)
    params = TradingParams.parse(TRADING, "trading")
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(predictions, prices, params, "bench")
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


def _exponent(rows: list[dict[str, Any]], key: str, measure: str) -> float:
    """Slope of log(time) against log(size): 1.0 means linear growth."""
    x = np.log([r[key] for r in rows])
    y = np.log([r[measure] for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def report(rows: list[dict[str, Any]], key: str, title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'symbols':>8} {'years':>5} {'sessions':>8} {'wall s':>7} {'cpu s':>6} "
        f"{'cpu/session':>11} {'peak RSS MB':>11} {'trades':>7} {'cpu ratio':>9}"
    )
    base = rows[0]
    for row in rows:
        ratio = row["cpu_seconds_median"] / base["cpu_seconds_median"]
        per_session = row["cpu_seconds_median"] / row["sessions"] * 1e3
        print(
            f"{row['symbols']:>8} {row['years']:>5} {row['sessions']:>8} "
            f"{row['seconds_median']:>7.2f} {row['cpu_seconds_median']:>6.2f} "
            f"{per_session:>9.2f}ms {row['peak_rss_bytes'] / 1024**2:>11.0f} "
            f"{row['trades']:>7} {ratio:>9.2f}"
        )
    if len(rows) > 1:
        wall = _exponent(rows, key, "seconds_median")
        cpu = _exponent(rows, key, "cpu_seconds_median")
        print(f"time grows as {key}^{cpu:.2f} (cpu), {key}^{wall:.2f} (wall)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs=2, type=int, metavar=("SYMBOLS", "YEARS"))
    parser.add_argument("--symbols", type=int, nargs="*", default=list(SYMBOL_GRID))
    parser.add_argument("--years", type=int, nargs="*", default=list(YEAR_GRID))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one case instead")
    args = parser.parse_args()

    if args.case:
        print(json.dumps(run_case(*args.case, repeats=args.repeats)))
        return
    if args.profile:
        profile(max(args.symbols), max(args.years))
        return

    full_years, full_symbols = max(args.years), max(args.symbols)
    by_symbols = [in_subprocess(n, full_years, args.repeats) for n in sorted(args.symbols)]
    cached = {(r["symbols"], r["years"]): r for r in by_symbols}
    by_years = [
        cached.get((full_symbols, y)) or in_subprocess(full_symbols, y, args.repeats)
        for y in sorted(args.years)
    ]
    report(by_symbols, "symbols", f"Scaling with symbols ({full_years} years)")
    report(by_years, "years", f"Scaling with years ({full_symbols} symbols)")
    full = cached[(full_symbols, full_years)]
    ok = full["seconds_median"] < TARGET_SECONDS and full["peak_rss_bytes"] < TARGET_BYTES
    print(
        f"\n{full_symbols} symbols x {full_years} years: {full['seconds_median']:.1f} s wall "
        f"({full['cpu_seconds_median']:.1f} s cpu) median of {full['repeats']}, "
        f"peak RSS {full['peak_rss_bytes'] / 1024**3:.2f} GB "
        f"(target < {TARGET_SECONDS:.0f} s and < 2 GB): {'met' if ok else 'MISSED'}"
    )
    print(json.dumps({"by_symbols": by_symbols, "by_years": by_years}))


if __name__ == "__main__":
    main()
