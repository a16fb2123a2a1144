"""Loading a stored forecaster's Ludwig models: Ludwig's own config check against the cached one.

Every ``LudwigModel.load`` validates the model's config against Ludwig's JSON schema twice, and
``jsonschema.validate`` re-checks that large schema against the meta-schema each time
(``stock_mlops.models.ludwig_runtime`` checks it once per process). This script trains one
one-epoch model (the test config) per symbol (7 by default, as many as the bundled snapshot,
resampled from it), then, in fresh interpreters alternating between the two modes, times
loading all of them twice in a row (the first load in a process also builds Ludwig's schema).

Usage: PYTHONPATH=src .venv/bin/python benchmarks/bench_ludwig_load.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((PROJECT / "benchmarks" / "one_epoch_ludwig.yaml").read_text())


def build_forecaster(target: Path, n_symbols: int) -> int:
    """Trains one tiny model per symbol and pickles the forecaster; returns the count."""
    from _synthetic import synthetic_prices

    from stock_mlops.core.params import FeatureEngineeringParams
    from stock_mlops.models.forecaster import StockForecaster
    from stock_mlops.pipelines.feature_engineering.nodes import build_features
    from stock_mlops.pipelines.training.ludwig_trainer import train_ludwig

    prices = synthetic_prices(n_symbols=n_symbols, years=8)  # resampled from the real snapshot
    columns = ["log_return_1d", "rsi_14", "target_return_1d"]
    features = build_features(prices, FeatureEngineeringParams()).dropna(subset=columns)
    archives = {}
    for symbol, rows in features.groupby("symbol"):
        train, validation = rows[rows["date"] < "2021-01-01"], rows[rows["date"] >= "2021-01-01"]
        archives[symbol] = train_ludwig(TINY, train, validation, seed=1).archive
    forecaster = StockForecaster(
        archives=archives,
        input_columns=["log_return_1d", "rsi_14"],
        output_name="target_return_1d",
        output_type="number",
        scope="per_symbol",
        metadata={},
        input_example=[],
    )
    target.write_bytes(pickle.dumps(forecaster))
    return len(archives)


def time_loads(pickled: Path, cached: bool) -> list[float]:
    """In this process: seconds to load every model, twice (fresh copies)."""
    import ludwig.api  # noqa: F401 - the import is not what is measured

    from stock_mlops.models import ludwig_runtime

    if not cached:  # loading installs the cached check: keep Ludwig's own instead
        ludwig_runtime.install = lambda: None
    seconds = []
    for _ in range(2):
        forecaster = pickle.loads(pickled.read_bytes())
        started = time.perf_counter()
        forecaster._models()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=7)
    parser.add_argument("--child", choices=["stock", "cached"])
    parser.add_argument("--pickled", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(time_loads(args.pickled, args.child == "cached")))
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        pickled = Path(scratch) / "forecaster.pkl"
        count = build_forecaster(pickled, args.symbols)
        results: dict[str, list[list[float]]] = {"stock": [], "cached": []}
        for _ in range(args.rounds):
            for mode in ("stock", "cached"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--pickled", str(pickled)],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=PROJECT,
                )
                results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"loading {count} one-epoch Ludwig models, {args.rounds} fresh processes per mode")
    for mode, runs in results.items():
        first = statistics.median(r[0] for r in runs)
        second = statistics.median(r[1] for r in runs)
        print(f"{mode:>6}: first load {first:.2f} s, second {second:.2f} s (every run: {runs})")
    ratio = statistics.median(r[1] for r in results["stock"]) / statistics.median(
        r[1] for r in results["cached"]
    )
    print(f"second load, stock / cached: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
