"""The permutation test's cost: one real replay of the backtest against the fast exact replay.

Data: the bundled mag7 prices, the default split's test period (decisions after 2022-06-30), and
predictions of a weak model (realised next-day return x 0.1 plus N(0, 1%) noise, seeded). The
rule is the project's default (all_in, next_open fills, 5 bps slippage, threshold 0.005).

Measured, as CPU time (``time.process_time``, so other load on this shared machine counts less
than in wall time), median over repeats: ``simulate`` (the real day-by-day replay through
``decide_orders`` and the simulated broker) and ``fast_all_in_equity`` on the same inputs, whose
equity curves are checked equal first; then a whole permutation test of ``--samples`` shuffles.

Usage::

    .venv/bin/python benchmarks/bench_permutation.py [--repeats 5] [--samples 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

VALIDATION_END = pd.Timestamp("2022-06-30")


def inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    from stock_mlops.core import calendar
    from stock_mlops.core.params import DataIngestionParams
    from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
    from stock_mlops.sources.base import ArchivedPrices, PriceRequest
    from stock_mlops.sources.files import BundledSource

    source = BundledSource()
    symbols = source.list_symbols()
    batch = ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=tuple(symbols)),
        fetched_at="20240101T000000000000Z",
        payloads={s: [source.fetch(s)] for s in symbols},
        failures=[],
    )
    prices, _ = clean_prices(batch, DataIngestionParams(), None)
    frame = prices.sort_values(["symbol", "date"])
    rows = frame.assign(next_close=frame.groupby("symbol")["close"].shift(-1))
    rows = rows[rows["date"] > VALIDATION_END].dropna(subset=["next_close"])
    realised = rows["next_close"] / rows["close"] - 1
    noise = np.random.default_rng(0).normal(0, 0.01, len(rows))
    predicted = 0.1 * realised.to_numpy() + noise
    predictions = pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "target_date": calendar.next_sessions(rows["date"]).to_numpy(),
            "last_close": rows["close"].to_numpy(),
            "prediction": rows["close"].to_numpy() * (1 + predicted),
            "predicted_direction": np.where(predicted > 0, "up", "down"),
        }
    ).sort_values(["feature_date", "symbol"], kind="stable")
    return predictions, prices


def cpu(call, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.process_time()
        result = call()
        times.append(time.process_time() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()

    from stock_mlops.core.params import BacktestParams, TradingParams
    from stock_mlops.pipelines.backtest import replay
    from stock_mlops.pipelines.backtest.nodes import permutation_test, simulate

    predictions, prices = inputs()
    trading = TradingParams.parse(
        {"local": {"fill_at": "next_open", "slippage_bps": 5.0}, "threshold": 0.005}
    )
    real_time, (_, equity) = cpu(lambda: simulate(predictions, prices, trading, "bench"), 3)
    aligned = replay.prepare_replay(predictions, prices, trading.risk.max_price_deviation)
    fast_time, fast = cpu(lambda: replay.fast_all_in_equity(aligned, trading), args.repeats)
    assert np.allclose(fast, equity["equity"].to_numpy(), rtol=1e-12, atol=1e-6)
    evaluation = predictions.assign(
        date=predictions["target_date"], model="ludwig", split="test", fold="holdout"
    )
    backtest = BacktestParams(permutation={"samples": args.samples})
    test_time, result = cpu(
        lambda: permutation_test(evaluation, prices, equity, trading, backtest, "bench"), 1
    )
    days = predictions["feature_date"].nunique()
    print(f"{predictions['symbol'].nunique()} symbols x {days} decision days, all_in rule")
    print(f"real replay (simulate):      {real_time:8.3f} s CPU (median of 3)")
    print(f"fast replay (equal curves):  {fast_time * 1000:8.1f} ms CPU (median of {args.repeats})")
    print(f"ratio:                       {real_time / fast_time:8.0f}x")
    print(
        f"permutation test, {args.samples} shuffles: {test_time:.1f} s CPU; share at least as "
        f"good {result['share_at_least_as_good']:.2f}"
    )


if __name__ == "__main__":
    main()
