"""Per-symbol training serially and on Dask, the pooled model beside it, and what 500 symbols cost.

Measures, on a panel resampled from the bundled prices (benchmarks/_synthetic.py; 20 symbols by
default, 8 years), with the house Ludwig config (conf/base/ludwig/model.yaml) on the default
split (training.window counted back from the newest session):

1. per-symbol training with ``training.executor: serial`` and with ``dask`` (a LocalCluster of
   two worker processes on 127.0.0.1, one torch thread each): wall time, peak memory (the
   process, or every worker and the driver), the speed-up serial / dask;
2. the pooled model (one model, symbol as input) trained serially on the same rows: time,
   memory, and MAE on return of both scopes on the test slice, beside the naive forecaster's;
3. Dask's overhead per task: 200 no-op tasks, and the size of one symbol's task (its rows);
   beside it, what the baselines (naive, drift, ridge) of every symbol cost in the driver on
   the validation, gate and test rows, as the evaluation computes them (they are not tasks);
4. from a worker's time per model (one core, one torch thread), the time for 500 symbols on 1,
   2, 16 and 64 cores.

Each mode runs in a fresh process (so peak memory is that mode's); the machine is shared and
noisy, so repeat with --repeats and read medians.

Usage: .venv/bin/python benchmarks/bench_dask.py [--symbols 20] [--repeats 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parts(n_symbols: int, years: int, **training):
    import yaml
    from _synthetic import synthetic_prices

    from stock_mlops.core.params import FeatureEngineeringParams, TrainingParams
    from stock_mlops.pipelines.feature_engineering.nodes import build_features
    from stock_mlops.pipelines.training.config_validation import validate_ludwig_config
    from stock_mlops.pipelines.training.nodes import _fold_parts, plan_training

    prices = synthetic_prices(n_symbols=n_symbols, years=years)
    features = build_features(prices, FeatureEngineeringParams())
    raw = yaml.safe_load((PROJECT / "conf/base/ludwig/model.yaml").read_text())
    # The default window (sessions back from the newest); the fixed dates are unused.
    split = {"train_end": "2020-12-31", "validation_end": "2021-12-31"}
    params = TrainingParams.parse({"ludwig_config": "model.yaml", "split": split, **training})
    config = validate_ludwig_config(raw, list(features.columns), params.scope)
    plan = plan_training(features, raw, params, None)
    return config, params, _fold_parts(features, plan.fold)


def run_mode(mode: str, n_symbols: int, years: int, workers: int) -> dict:
    """One measurement in this process: ``serial``, ``dask``, ``pooled`` or ``overhead``."""
    from stock_mlops.pipelines.training.nodes import _train_models

    training = {
        "executor": "dask" if mode == "dask" else "serial",
        "scope": "pooled" if mode == "pooled" else "per_symbol",
        "dask": {"n_workers": workers},
    }
    config, params, parts = _parts(n_symbols, years, **training)
    if mode == "overhead":
        return _overhead(parts, config, params)
    result: dict = {"mode": mode, "symbols": n_symbols, "train_rows": len(parts["train"])}
    if mode == "dask":
        from stock_mlops.pipelines.training.executors import start_client

        started = time.perf_counter()
        with start_client(params.dask) as client:
            result["cluster_start_s"] = time.perf_counter() - started
            client.run(_import_ludwig)  # what a long-lived cluster has already paid
            result["worker_import_s"] = time.perf_counter() - started - result["cluster_start_s"]
            started = time.perf_counter()
            fitted = _train_models(config, {"": parts}, params)[""]
            result["train_s"] = time.perf_counter() - started
            result["worker_peak_mb"] = sorted(client.run(_peak_mb).values())
    else:
        started = time.perf_counter()
        fitted = _train_models(config, {"": parts}, params)[""]
        result["train_s"] = time.perf_counter() - started
    result["peak_mb"] = _peak_mb()
    result["models"] = len(fitted)
    result.update(_test_mae(fitted, config, params, parts))
    return result


def _import_ludwig() -> None:
    import ludwig.api  # noqa: F401


def _test_mae(fitted, config, params, parts) -> dict:
    from stock_mlops.core import columns as C
    from stock_mlops.models.forecaster import StockForecaster
    from stock_mlops.pipelines.training.config_validation import input_columns, output_feature

    target, kind = output_feature(config)
    forecaster = StockForecaster(
        archives={key: model.archive for key, model in fitted.items()},
        input_columns=input_columns(config),
        output_name=target,
        output_type=kind,
        scope=params.scope,
        metadata={},
        input_example=[],
    )
    test = parts["test"]
    predicted = forecaster.predict(None, test)["prediction"].to_numpy()
    actual = test[C.TARGET_RETURN].to_numpy()
    return {
        "test_rows": len(test),
        "test_mae_return": float(abs(predicted - actual).mean()),
        "naive_test_mae_return": float(abs(actual).mean()),  # naive predicts a zero return
    }


def _noop(value: int) -> int:
    return value


def _overhead(parts, config, params) -> dict:
    from stock_mlops.pipelines.training.executors import start_client
    from stock_mlops.pipelines.training.nodes import _model_tasks

    tasks = _model_tasks(config, parts, params)
    sizes = [len(pickle.dumps(task.args)) for task in tasks]
    with start_client(params.dask) as client:
        client.submit(_noop, 0).result()
        started = time.perf_counter()
        client.gather(client.map(_noop, range(200), pure=False))
        per_task = (time.perf_counter() - started) / 200
        started = time.perf_counter()
        one = client.submit(_noop, tasks[0].args, pure=False).result()
        transfer = time.perf_counter() - started
    assert one is not None
    return {
        "mode": "overhead",
        "baselines_s": _baselines_seconds(parts, config, params),
        "per_task_ms": per_task * 1000,
        "task_bytes_median": statistics.median(sizes),
        "one_symbol_round_trip_ms": transfer * 1000,
    }


def _baselines_seconds(parts, config, params) -> float:
    """The evaluation's baselines of every symbol on the evaluated splits, in this process."""
    from stock_mlops.pipelines.training.nodes import EVALUATED_SPLITS, baseline_closes

    started = time.perf_counter()
    for split in EVALUATED_SPLITS:
        baseline_closes(parts["train"], parts[split], config, params)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--years", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.symbols, args.years, args.workers)))
        return 0
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for mode in ("serial", "dask", "pooled", "overhead"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--mode",
                    mode,
                    "--symbols",
                    str(args.symbols),
                    "--years",
                    str(args.years),
                    "--workers",
                    str(args.workers),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=PROJECT,
            )
            runs.setdefault(mode, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(mode, runs[mode][-1], flush=True)
    _report(runs, args)
    return 0


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _report(runs: dict[str, list[dict]], args) -> None:
    serial, dask = _median(runs["serial"], "train_s"), _median(runs["dask"], "train_s")
    per_symbol = serial / args.symbols
    overhead = _median(runs["overhead"], "per_task_ms") / 1000
    print(f"\n{args.symbols} symbols, {args.years} years, house config, medians of {args.repeats}")
    print(
        f"serial per-symbol: {serial:.1f} s ({per_symbol:.1f} s a symbol), "
        f"peak {_median(runs['serial'], 'peak_mb'):.0f} MB"
    )
    print(
        f"dask, {args.workers} workers: {dask:.1f} s, speed-up {serial / dask:.2f}x; cluster "
        f"start {_median(runs['dask'], 'cluster_start_s'):.1f} s, worker imports "
        f"{_median(runs['dask'], 'worker_import_s'):.1f} s; worker peak "
        f"{max(max(r['worker_peak_mb']) for r in runs['dask']):.0f} MB, driver "
        f"{_median(runs['dask'], 'peak_mb'):.0f} MB"
    )
    print(
        f"pooled: {_median(runs['pooled'], 'train_s'):.1f} s, peak "
        f"{_median(runs['pooled'], 'peak_mb'):.0f} MB"
    )
    for mode in ("serial", "dask", "pooled"):
        print(
            f"  {mode}: test MAE on return {_median(runs[mode], 'test_mae_return'):.5f} "
            f"(naive {_median(runs[mode], 'naive_test_mae_return'):.5f}, "
            f"{_median(runs[mode], 'test_rows'):.0f} rows)"
        )
    print(
        f"Dask overhead: {overhead * 1000:.1f} ms a task; one symbol's task "
        f"{_median(runs['overhead'], 'task_bytes_median') / 1e6:.2f} MB, round trip "
        f"{_median(runs['overhead'], 'one_symbol_round_trip_ms'):.0f} ms"
    )
    baselines = _median(runs["overhead"], "baselines_s")
    print(
        f"baselines (naive, drift, ridge) of all {args.symbols} symbols on 3 splits, in the "
        f"driver: {baselines:.2f} s ({baselines / args.symbols * 1000:.0f} ms a symbol)"
    )
    # One core's time per model is a worker's (one torch thread); the serial figure is not:
    # torch spreads each serial model over every core.
    per_core = dask * args.workers / args.symbols
    print(f"one model on one core (a worker's): {per_core:.1f} s")
    for cores in (1, 2, 16, 64):
        estimate = 500 * per_core / cores + 500 * overhead
        print(f"500 symbols on {cores:>2} cores: about {estimate / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
