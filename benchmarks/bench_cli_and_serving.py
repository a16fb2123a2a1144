"""Figures for the README's CLI and serving sections.

1. How fast an impossible Ludwig config is refused: the wall time, from the start of the
   command to its exit, of a training run with a config holding a top-level key Ludwig does not
   know, started as `make run` starts it (`python -m stock_mlops`: no plugin CLI loads) and as
   `kedro run` (Kedro's CLI imports every plugin's commands first); the pre-flight refuses it
   before the session starts. Beside it, `kedro --help` (the CLI's start-up alone) and
   what the same mistake cost before: the session's start plus the training node's own
   check, which imports Ludwig first (measured as a cold `validate_ludwig_config` in a fresh
   interpreter); and the pre-flight check itself, in-process.
2. How many daily bars a prediction-from-prices request needs: for 7 symbols and 25 as-of dates
   over the last three years of the bundled data, the newest row's features computed from only
   the last N bars against the ones computed from the whole history, as the largest absolute
   difference in standard deviations of each feature.

Usage: .venv/bin/python benchmarks/bench_cli_and_serving.py [--runs 3]
The machine is shared and noisy: medians are reported, with every repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = {
    "model": {"type": "mlp"},  # the predecessor's silently ignored block
    "input_features": [{"name": "log_return_1d", "type": "number"}],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
}
BAR_COUNTS = (34, 60, 100, 150, 200, 250)


# How each route starts a run (the options follow).
ROUTES = {
    "make run (python -m stock_mlops)": [sys.executable, "-m", "stock_mlops"],
    "kedro run": [str(BIN / "kedro"), "run"],
}


def refusal_seconds(workdir: Path, command: list[str]) -> float:
    """Wall time of one refused training run started with ``command``, start to exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "model.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    params = f"storage_root={workdir / 'data'},training.ludwig_config={config}"
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--pipelines", "training", "--params", params],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 2 and "unknown top-level key" in done.stderr, done.stderr[-2000:]
    return elapsed


def kedro_help_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([str(BIN / "kedro"), "--help"], cwd=PROJECT, capture_output=True, check=True)
    return time.perf_counter() - started


def cold_ludwig_check_seconds() -> float:
    """The training node's own check in a fresh interpreter (it imports Ludwig first)."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from stock_mlops.pipelines.training.config_validation import validate_ludwig_config\n"
        f"config = {CONFIG!r}\n"
        "try:\n    validate_ludwig_config(config, ['log_return_1d'], 'per_symbol')\n"
        "except ValueError:\n    pass\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def in_process_check_ms(repeats: int = 200) -> float:
    from stock_mlops.core.params import FeatureEngineeringParams
    from stock_mlops.pipelines.training.config_validation import LudwigConfigError
    from stock_mlops.preflight import check_ludwig_config

    params = FeatureEngineeringParams()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            check_ludwig_config(CONFIG, params)
        except LudwigConfigError:
            pass
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings)


def warmup_table() -> pd.DataFrame:
    """Largest |window - full| / std of each feature's newest row, per number of bars sent."""
    from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams
    from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
    from stock_mlops.pipelines.feature_engineering.nodes import build_features
    from stock_mlops.pipelines.feature_engineering.registry import feature_names
    from stock_mlops.sources.base import ArchivedPrices, PriceRequest
    from stock_mlops.sources.files import BundledSource

    source = BundledSource()
    symbols = ("AAPL", "AMZN", "GOOGL", "META", "MSFT", "NVDA", "TSLA")
    batch = ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=symbols),
        fetched_at="20240101T000000000000Z",
        payloads={s: [source.fetch(s)] for s in symbols},
        failures=[],
    )
    prices, _ = clean_prices(batch, DataIngestionParams(), None)
    params = FeatureEngineeringParams()
    names = feature_names(params.indicators, params.calendar_features)
    full = build_features(prices, params)
    scale = full[names].std()
    dates = pd.DatetimeIndex(sorted(full["date"].unique()))
    as_of = dates[np.linspace(len(dates) - 756, len(dates) - 1, 25).astype(int)]
    worst = {n: pd.Series(0.0, index=names) for n in BAR_COUNTS}
    for symbol in symbols:
        bars = prices[prices["symbol"] == symbol].sort_values("date")
        reference = full[full["symbol"] == symbol].set_index("date")
        for date in as_of:
            upto = bars[bars["date"] <= date]
            for n in BAR_COUNTS:
                window = build_features(upto.tail(n), params)
                newest = window[window["date"] == upto["date"].max()]
                if newest.empty:
                    worst[n][:] = np.inf
                    continue
                diff = (newest[names].iloc[0] - reference.loc[upto["date"].max(), names]).abs()
                worst[n] = np.maximum(worst[n], diff / scale)
    return pd.DataFrame(worst).T.rename_axis("bars")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    refusals: dict[str, list[float]] = {name: [] for name in ROUTES}
    helps = []
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as scratch:
        for i in range(args.runs):  # interleaved, so that a noisy minute hits every route
            for n, (name, command) in enumerate(ROUTES.items()):
                refusals[name].append(refusal_seconds(Path(scratch) / f"{i}-{n}", command))
            helps.append(kedro_help_seconds())
    colds = [cold_ludwig_check_seconds() for _ in range(args.runs)]
    print("1. an impossible Ludwig config (a top-level key Ludwig does not know)")
    for name, seconds in refusals.items():
        print(
            f"   {name} refused it after {statistics.median(seconds):.1f} s (median; runs: "
            f"{', '.join(f'{s:.1f}' for s in seconds)}), before the session started"
        )
    print(
        f"   kedro --help alone: {statistics.median(helps):.1f} s (median; runs: "
        f"{', '.join(f'{s:.1f}' for s in helps)})"
    )
    print(
        f"   the training node's own check alone, cold: {statistics.median(colds):.1f} s "
        f"(median; runs: {', '.join(f'{s:.1f}' for s in colds)}), importing Ludwig"
    )
    print(f"   the pre-flight check in-process: {in_process_check_ms():.2f} ms (median of 200)")
    print("\n2. newest-row features from the last N bars against the full history,")
    print("   largest |difference| in standard deviations (7 symbols x 25 dates, 2021-2023):")
    table = warmup_table()
    with pd.option_context("display.width", 200, "display.float_format", "{:.1e}".format):
        print(
            table.drop(columns=["obv"])
            .max(axis=1)
            .rename("all but obv")
            .to_frame()
            .join(table[["rsi_14", "macd_hist_12_26_9", "atr_14", "obv"]])
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT / "src"))
    sys.exit(main())
