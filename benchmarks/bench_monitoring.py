"""Monitoring cost on the bundled data: evidently's import, the two reports, the page, and
adding a run to the team's evidently workspace as its history grows.

Data: the 7 bundled symbols, features as the pipeline builds them, the default monitoring
parameters (60 current sessions; drift reference = a training window 2013-2020, about 14,000
rows). The predictions are a weak synthetic model on the real closes (predicted return =
0.1 x realised + noise), because only the cost is measured here. Each stage is timed
``--repeats`` times (median and range); the import in fresh interpreters.

The workspace figure is the time of one save (two snapshots added, the run date's old ones
removed, the dashboard saved) into a workspace that already holds N run dates: the save reads
no old snapshot (an index maps run dates to snapshots), so it should not grow with N.

Usage::

    .venv/bin/python benchmarks/bench_monitoring.py [--repeats 3] [--history 0 30 120]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from stock_mlops.core.monitoring import MonitoringRun
from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams, MonitoringParams
from stock_mlops.datasets import EvidentlyWorkspaceDataset
from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
from stock_mlops.pipelines.feature_engineering.nodes import build_features, describe_features
from stock_mlops.pipelines.monitoring import nodes, reports
from stock_mlops.sources.base import ArchivedPrices, PriceRequest
from stock_mlops.sources.files import BundledSource

SEED = 20240101
CARD = {"train_start": None, "train_end": "2020-12-31"}


def bundled_prices() -> pd.DataFrame:
    """Every bundled symbol, validated as the data_ingestion pipeline does it."""
    source = BundledSource()
    symbols = tuple(source.list_symbols())
    batch = ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=symbols),
        fetched_at="20240101T000000000000Z",
        payloads={s: [source.fetch(s)] for s in symbols},
        failures=[],
    )
    prices, _ = clean_prices(batch, DataIngestionParams(), None)
    return prices


def weak_model(features: pd.DataFrame) -> pd.DataFrame:
    """Out-of-sample rows of a weak model: validation 2021-2022, test 2023."""
    rng = np.random.default_rng(SEED)
    rows = features[features["target_close_1d"].notna() & (features["date"] >= "2021-01-01")]
    realised = rows["target_close_1d"] / rows["close"] - 1
    predicted = 0.1 * realised + rng.normal(0, 0.01, len(rows))
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "date": rows["target_date"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "model": "ludwig",
            "split": np.where(
                rows["target_date"] < pd.Timestamp("2023-01-01"), "validation", "test"
            ),
            "fold": "holdout",
            "last_close": rows["close"].to_numpy(),
            "prediction": (rows["close"] * (1 + predicted)).to_numpy(),
            "actual": rows["target_close_1d"].to_numpy(),
        }
    )


def timed(func, repeats: int) -> tuple[float, float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times), result


def import_seconds(repeats: int) -> list[float]:
    code = (
        "import time; t = time.perf_counter(); import evidently.presets, evidently.metrics; "
        "print(time.perf_counter() - t)"
    )
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(repeats)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 30, 120])
    args = parser.parse_args()
    rows = []

    imports = import_seconds(args.repeats)
    rows.append(
        (
            "import evidently (fresh interpreter)",
            statistics.median(imports),
            min(imports),
            max(imports),
        )
    )

    prices = bundled_prices()
    features = build_features(prices, FeatureEngineeringParams())
    kinds = describe_features(FeatureEngineeringParams())
    params = MonitoringParams()
    as_of = nodes.monitoring_date(features, None)
    ref, cur, window = nodes.drift_windows(features, kinds, CARD, params, as_of)
    outcomes = nodes.prediction_outcomes(
        weak_model(features), pd.DataFrame({"team": []}), prices, "bench"
    )
    qref, qcur, qwindow = nodes.quality_windows(outcomes, params, as_of)
    print(
        f"drift: {len(cur)} current rows against {len(ref)} reference rows "
        f"({window['reference_note']}); quality: {len(qcur)} against {len(qref)}",
        flush=True,
    )

    *stats, drift = timed(
        lambda: nodes.drift_report(ref, cur, window, params, "bench"), args.repeats
    )
    rows.append(("drift report (6 features)", *stats))
    *stats, quality = timed(
        lambda: nodes.quality_report(qref, qcur, qwindow, params, "bench"), args.repeats
    )
    rows.append(("quality report", *stats))
    alert = nodes.monitoring_alert(drift, quality, window, "bench")
    *stats, page = timed(
        lambda: nodes.render_monitoring_report(drift, quality, alert, window, qwindow, "bench"),
        args.repeats,
    )
    rows.append((f"page ({len(page) / 1e6:.1f} MB)", *stats))

    with tempfile.TemporaryDirectory() as folder:
        dataset = EvidentlyWorkspaceDataset(path=f"{folder}/ws")
        stored = 0
        first = dt.date(2020, 1, 1)
        for history in sorted(args.history):
            while stored < history:  # fill the history with earlier run dates
                day = first + dt.timedelta(days=stored)
                dataset.save(
                    MonitoringRun(
                        "bench", day, {"drift": drift, "quality": quality}, reports.dashboard()
                    )
                )
                stored += 1
            run = MonitoringRun(
                "bench",
                dt.date(2023, 12, 29),
                {"drift": drift, "quality": quality},
                reports.dashboard(),
            )
            *stats, _ = timed(lambda run=run: dataset.save(run), args.repeats)
            rows.append((f"workspace save, {history} run dates stored", *stats))

    print(f"\n{'stage':45} {'median s':>9} {'min':>7} {'max':>7}")
    for name, median, low, high in rows:
        print(f"{name:45} {median:9.2f} {low:7.2f} {high:7.2f}")


if __name__ == "__main__":
    main()
