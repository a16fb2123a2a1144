"""Load and bad input on `make serve`: throughput, latency percentiles, errors, server memory.

1. Serves a model with the real `make serve` on 127.0.0.1 (by default a one-epoch per-symbol
   Ludwig forecaster trained here on the bundled AAPL, MSFT and NVDA rows and saved as the
   project's local model folder; ``--model-uri`` serves another, e.g. a team's champion).
2. Sends every bad request of ``tests/serving_load.fuzz_cases`` (malformed JSON, wrong types,
   missing columns, NaN, infinities, an empty body, 10 MB) and checks each gets a 4xx naming the
   problem, followed each time by a valid request that must still be answered correctly.
3. Runs ``--clients`` concurrent clients for ``--seconds`` (stop conditions: the time,
   ``--max-requests``, or ``--max-errors`` failed answers), each posting one day's feature rows
   of the three symbols; every answer must equal the single-client answer. The server's
   resident memory (its whole process tree: make, the mlflow CLI, uvicorn) is sampled every
   0.1 s with psutil.
4. One valid 10 MB request (about 110,000 rows): its status, time and the memory it took.

Usage: nice -n 10 .venv/bin/python benchmarks/bench_serving_load.py [--clients 16] [--seconds 30]
       [--model-uri URI] [--out results.json]
Nothing is asserted about timings; the script exits non-zero when an answer was wrong or a bad
request was not refused with a 4xx.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
sys.path.insert(0, str(PROJECT / "tests"))

SYMBOLS = ("AAPL", "MSFT", "NVDA")
CONFIG = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
        {"name": "volatility_20", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}


def features():
    from helpers import raw_batch

    from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams
    from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
    from stock_mlops.pipelines.feature_engineering.nodes import build_features

    prices, _ = clean_prices(raw_batch(SYMBOLS), DataIngestionParams(), None)
    rows = build_features(prices, FeatureEngineeringParams())
    return rows[rows["date"] >= "2019-01-01"].reset_index(drop=True)


def train_model(rows, folder: Path) -> str:
    """A one-epoch per-symbol Ludwig forecaster saved as the project's local model folder."""
    from stock_mlops.core.params import TrainingParams
    from stock_mlops.datasets import PyfuncModelDataset
    from stock_mlops.pipelines.training.nodes import (
        plan_training,
        train_forecaster,
        validate_training_config,
    )

    split = {
        "train_end": dt.date(2021, 6, 30),
        "validation_end": dt.date(2022, 6, 30),
        "gate_end": dt.date(2022, 12, 30),
    }
    params = TrainingParams(ludwig_config="bench.yaml", split=split, window=None, random_seed=1)
    plan = plan_training(rows, CONFIG, params, None)
    validated = validate_training_config(copy.deepcopy(CONFIG), rows, params.scope, plan)
    model, *_ = train_forecaster(rows, validated, params, "bench", plan)
    PyfuncModelDataset(filepath=str(folder)).save(model)
    return str(folder)


def request_rows(rows) -> list[dict]:
    """The newest day's feature rows as a client sends them (no dates, no targets)."""
    last = rows[rows["date"] == rows["date"].max()]
    dropped = [c for c in last.columns if c.startswith("target_") or c == "date"]
    return json.loads(last.drop(columns=dropped).to_json(orient="records"))


def fuzz(url: str, records: list[dict], expected: list[float]) -> list[dict]:
    import requests
    from serving_load import JSON, answer_problem, fuzz_cases

    outcomes = []
    for name, (body, fragment) in fuzz_cases(records[0], "log_return_1d", "rsi_14").items():
        started = time.perf_counter()
        response = requests.post(f"{url}/invocations", data=body, headers=JSON, timeout=120)
        seconds = time.perf_counter() - started
        after = requests.post(
            f"{url}/invocations", json={"dataframe_records": records[:1]}, timeout=60
        )
        try:
            message = json.loads(response.text).get("message", "")
        except ValueError:
            message = response.text
        outcomes.append(
            {
                "case": name,
                "bytes": len(body),
                "status": response.status_code,
                "seconds": round(seconds, 2),
                "refused_with_reason": 400 <= response.status_code < 500 and fragment in message,
                "then_valid_ok": answer_problem(after, expected[:1]) is None,
                "reason": message.rsplit("Error:", 1)[-1].strip()[:110],
            }
        )
    return outcomes


def big_valid_request(url: str, records: list[dict], pid: int) -> dict:
    import requests
    from serving_load import JSON, TEN_MB, MemorySampler

    body_rows = records * (TEN_MB // len(json.dumps(records)) + 1)
    body = json.dumps({"dataframe_records": body_rows}).encode()
    sampler = MemorySampler(pid)
    sampler.start()
    started = time.perf_counter()
    response = requests.post(f"{url}/invocations", data=body, headers=JSON, timeout=600)
    seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    answered = response.status_code == 200 and len(response.json()["predictions"]) == len(body_rows)
    return {
        "bytes": len(body),
        "rows": len(body_rows),
        "status": response.status_code,
        "answered_every_row": answered,
        "seconds": round(seconds, 1),
        "rss_before_mb": round(sampler.start_value / 2**20, 1),
        "rss_peak_mb": round(sampler.peak / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--max-errors", type=int, default=20)
    parser.add_argument("--model-uri", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    import requests
    from helpers import free_port, serve_process
    from serving_load import answer_problem, run_load

    with tempfile.TemporaryDirectory(prefix="bench_serving_") as scratch:
        work = Path(scratch)
        rows = features()
        started = time.perf_counter()
        uri = args.model_uri or train_model(rows, work / "forecaster")
        origin = "given" if args.model_uri else "trained"
        print(f"model: {origin} ({time.perf_counter() - started:.0f} s)")
        records = request_rows(rows)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": os.environ.get(
                "MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}"
            ),
            "PYTHONPATH": str(PROJECT / "src"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        started = time.perf_counter()
        with serve_process(
            [f"MODEL_URI={uri}"], free_port(), env, timeout=600, log=work / "serve.log"
        ) as (url, process):
            ready = time.perf_counter() - started
            print(f"make serve answered /ping after {ready:.0f} s")
            response = requests.post(
                f"{url}/invocations", json={"dataframe_records": records}, timeout=60
            )
            expected = [p["prediction"] for p in response.json()["predictions"]]
            assert answer_problem(response, expected) is None

            outcomes = fuzz(url, records, expected)
            print(f"\nbad requests ({len(outcomes)}):")
            for o in outcomes:
                mark = "ok " if o["refused_with_reason"] and o["then_valid_ok"] else "BAD"
                print(f"  {mark} {o['status']} {o['case']:34s} {o['bytes']:>9,d} B  {o['reason']}")

            load = run_load(
                url,
                records,
                expected,
                clients=args.clients,
                seconds=args.seconds,
                max_requests=args.max_requests,
                max_errors=args.max_errors,
                server_pid=process.pid,
            )
            summary = {**load.summary(), "load_average_1min": round(os.getloadavg()[0], 1)}
            print(f"\nload ({len(records)} rows per request):")
            for key, value in summary.items():
                print(f"  {key:22s} {value}")
            for error in load.first_errors:
                print(f"  error: {error}")

            big = big_valid_request(url, records, process.pid)
            print(f"\na valid 10 MB request: {big}")
            after = requests.post(
                f"{url}/invocations", json={"dataframe_records": records}, timeout=60
            )
            still = answer_problem(after, expected) is None
            print(f"server still answering correctly afterwards: {still}")

    results = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "rows_per_request": len(records),
        "server_ready_seconds": round(ready, 1),
        "fuzz": outcomes,
        "load": summary,
        "big_valid_request": big,
        "answering_afterwards": still,
    }
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    bad = [o for o in outcomes if not (o["refused_with_reason"] and o["then_valid_ok"])]
    return 1 if bad or load.errors or load.wrong or not still else 0


if __name__ == "__main__":
    sys.exit(main())
