"""Model-side figures for the README: the default run, Ludwig training, serving latency.

Measures, on the bundled data:
1. the wall time of the whole default pipeline (`kedro run`, fresh storage and MLflow store each
   time) and the share of it spent importing modules (CPython's -X importtime, summed over
   top-level imports of that very run);
2. Ludwig training time per symbol and for one pooled model, with the house config
   (conf/base/ludwig/model.yaml) on the default split;
3. the prediction latency of `mlflow models serve` over 200 single-row requests (median, p95).

Usage: .venv/bin/python benchmarks/bench_models.py [--runs 3] [--requests 200]
The machine is shared and noisy: medians are reported, with every repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def default_run(workdir: Path) -> dict[str, float]:
    """One `kedro run` of the default pipeline; returns wall time and top-level import time."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "PYTHONPROFILEIMPORTTIME": "1",
    }
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "kedro"), "run", "--params", f"storage_root={workdir / 'data'}"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    imports = 0
    for line in result.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        # Only top-level entries (no indentation): their cumulative time includes children.
        if match and len(match.group(3)) == 1:
            imports += int(match.group(2))
    return {"wall_s": wall, "import_s": imports / 1e6}


def training_times() -> dict[str, object]:
    """Ludwig training with the house config: each bundled symbol alone, then pooled."""
    import pandas as pd
    import yaml

    from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams, SplitParams
    from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
    from stock_mlops.pipelines.feature_engineering.nodes import build_features
    from stock_mlops.pipelines.training.config_validation import validate_ludwig_config
    from stock_mlops.pipelines.training.ludwig_trainer import train_ludwig
    from stock_mlops.pipelines.training.splits import holdout_fold, labelled_rows, split_rows
    from stock_mlops.sources.base import ArchivedPrices, PriceRequest
    from stock_mlops.sources.files import BundledSource

    source = BundledSource()
    symbols = source.list_symbols()
    batch = ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=tuple(symbols)),
        fetched_at="",
        payloads={s: [source.fetch(s)] for s in symbols},
        failures=[],
    )
    prices, _ = clean_prices(batch, DataIngestionParams(), None)
    features = build_features(prices, FeatureEngineeringParams())
    params = yaml.safe_load((PROJECT / "conf/base/parameters_training.yml").read_text())
    split = SplitParams(**params["training"]["split"])
    parts = split_rows(labelled_rows(features), holdout_fold(split))
    config = yaml.safe_load((PROJECT / "conf/base/ludwig/model.yaml").read_text())

    import ludwig.api  # noqa: F401 - import once, outside the timings

    per_symbol = {}
    for symbol in symbols:
        started = time.perf_counter()
        trained = train_ludwig(
            validate_ludwig_config(config, list(features.columns), "per_symbol"),
            parts["train"][parts["train"]["symbol"] == symbol],
            parts["validation"][parts["validation"]["symbol"] == symbol],
            42,
        )
        per_symbol[symbol] = {
            "seconds": time.perf_counter() - started,
            "epochs": len(trained.curves["train_loss"]),
        }
    pooled_config = validate_ludwig_config(config, list(features.columns), "pooled")
    started = time.perf_counter()
    trained = train_ludwig(pooled_config, parts["train"], parts["validation"], 42)
    pooled = {
        "seconds": time.perf_counter() - started,
        "epochs": len(trained.curves["train_loss"]),
        "rows": len(parts["train"]),
    }
    del pd
    return {"per_symbol": per_symbol, "pooled": pooled}


def serving_latency(model_dir: Path, features_path: Path, requests_count: int) -> dict[str, float]:
    """Single-row POST /invocations latency against `mlflow models serve` on loopback."""
    import pandas as pd
    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
            if time.perf_counter() - started > 300:
                raise RuntimeError("server not ready after 300 s")
        ready_s = time.perf_counter() - started
        features = pd.read_parquet(features_path)
        rows = features[features["date"] == features["date"].max()]
        drop = ["date", "target_date", "target_close_1d", "target_return_1d", "target_direction_1d"]
        records = rows.drop(columns=drop).to_dict("records")
        session = requests.Session()
        latencies = []
        for i in range(requests_count):
            body = {"dataframe_records": [records[i % len(records)]]}
            sent = time.perf_counter()
            response = session.post(f"{url}/invocations", json=body, timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
            response.raise_for_status()
        return {
            "ready_s": ready_s,
            "median_ms": float(np.median(latencies)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "requests": float(requests_count),
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_models_") as scratch:
        for i in range(args.runs):
            workdir = Path(scratch) / f"run{i}"
            workdir.mkdir()
            runs.append(default_run(workdir))
            print(
                f"default run {i + 1}: {runs[-1]['wall_s']:.1f} s wall, "
                f"{runs[-1]['import_s']:.1f} s importing"
            )
        last = Path(scratch) / f"run{args.runs - 1}" / "data"
        model_dir = next((last / "06_models/forecaster").glob("*/forecaster"))
        serving = serving_latency(model_dir, last / "04_feature/features.parquet", args.requests)
    training = training_times()

    walls = [r["wall_s"] for r in runs]
    shares = [r["import_s"] / r["wall_s"] for r in runs]
    per_symbol = [v["seconds"] for v in training["per_symbol"].values()]
    summary = {
        "default_run_wall_s_median": statistics.median(walls),
        "default_run_wall_s_all": walls,
        "import_share_median": statistics.median(shares),
        "import_s_median": statistics.median(r["import_s"] for r in runs),
        "training_per_symbol_s_median": statistics.median(per_symbol),
        "training_per_symbol": training["per_symbol"],
        "training_pooled": training["pooled"],
        "serving": serving,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
