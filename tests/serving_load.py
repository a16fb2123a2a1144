"""Load and bad input for a running scoring server (`make serve`), shared by the serving tests
and ``benchmarks/bench_serving_load.py``.

:func:`run_load` drives N concurrent clients (threads with their own HTTP session) for a bounded
time and request count, checks every answer against the expected predictions and samples the
resident memory of the server's whole process tree; :data:`fuzz_cases` are the bad requests,
each of which must get a 4xx with a message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from typing import Any

import numpy as np
import requests

JSON = {"Content-Type": "application/json"}
TEN_MB = 10 * 1024 * 1024


@dataclasses.dataclass
class LoadResult:
    """What a bounded load run measured."""

    clients: int
    seconds: float
    requests: int
    errors: int
    wrong: int
    latencies_ms: list[float]
    peak_rss_mb: float
    start_rss_mb: float
    first_errors: list[str]
    stopped_by: str

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p95_ms": round(self.percentile(95), 1),
            "p99_ms": round(self.percentile(99), 1),
            "errors": self.errors,
            "wrong_answers": self.wrong,
            "server_rss_start_mb": round(self.start_rss_mb, 1),
            "server_rss_peak_mb": round(self.peak_rss_mb, 1),
            "stopped_by": self.stopped_by,
        }


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants (0 once it is gone)."""
    import psutil  # noqa: PLC0415 - only where memory is measured

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class MemorySampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = self.start_value = tree_rss(pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.peak = max(self.peak, tree_rss(self.pid))


def answer_problem(response: requests.Response, expected: list[float]) -> str | None:
    """Why an answer is not the expected one (None when it is): status, JSON, row count, values."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        predictions = [row["prediction"] for row in json.loads(response.text)["predictions"]]
    except (ValueError, KeyError, TypeError) as error:
        return f"unparseable answer ({error!r}): {response.text[:300]}"
    if len(predictions) != len(expected):
        return f"{len(predictions)} predictions for {len(expected)} rows"
    if not np.allclose(predictions, expected, rtol=1e-9, atol=1e-12):
        return f"predictions {predictions} differ from {expected}"
    return None


def run_load(
    url: str,
    records: list[dict],
    expected: list[float],
    *,
    clients: int = 16,
    seconds: float = 30.0,
    max_requests: int = 100_000,
    max_errors: int = 20,
    timeout: float = 30.0,
    server_pid: int | None = None,
) -> LoadResult:
    """Posts ``records`` from ``clients`` threads until ``seconds`` pass, ``max_requests`` were
    sent or ``max_errors`` failed (the stop conditions); checks each answer against ``expected``.
    """
    body = json.dumps({"dataframe_records": records}).encode()
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    counts = {"sent": 0, "errors": 0, "wrong": 0}
    stop = threading.Event()
    reason = ["time"]

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                with lock:
                    if counts["sent"] >= max_requests:
                        reason[0] = "max_requests"
                        stop.set()
                        return
                    counts["sent"] += 1
                started = time.perf_counter()
                try:
                    response = session.post(
                        f"{url}/invocations", data=body, headers=JSON, timeout=timeout
                    )
                    problem = answer_problem(response, expected)
                    kind = "wrong" if problem and response.status_code == 200 else "errors"
                except requests.RequestException as error:
                    problem, kind = f"{type(error).__name__}: {error}", "errors"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        counts[kind] += 1
                        failures.append(problem)
                        if counts["errors"] + counts["wrong"] >= max_errors:
                            reason[0] = "max_errors"
                            stop.set()

    sampler = MemorySampler(server_pid) if server_pid else None
    if sampler:
        sampler.start()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout + 5)
    elapsed = time.perf_counter() - started
    if sampler:
        sampler.done.set()
        sampler.join()
    return LoadResult(
        clients=clients,
        seconds=elapsed,
        requests=len(latencies),
        errors=counts["errors"],
        wrong=counts["wrong"],
        latencies_ms=latencies,
        peak_rss_mb=(sampler.peak if sampler else 0) / 2**20,
        start_rss_mb=(sampler.start_value if sampler else 0) / 2**20,
        first_errors=failures[:5],
        stopped_by=reason[0],
    )


# ------------------------------------------------------------------------------ bad input
def _records_json(records: list[dict]) -> str:
    return json.dumps({"dataframe_records": records})


def fuzz_cases(valid: dict, first: str, second: str) -> dict[str, tuple[bytes, str]]:
    """Bad requests built from one valid feature row: name -> (body, a fragment the 4xx answer
    must contain). ``first`` and ``second`` are numeric input columns of the served model."""
    without = {k: v for k, v in valid.items() if k != second}
    # Python's json writes NaN and Infinity (as JavaScript does); MLflow's parser reads them.
    nan_row = _records_json([{**valid, first: math.nan}])
    inf_row = _records_json([{**valid, first: math.inf}])
    neg_inf_row = _records_json([{**valid, second: -math.inf}])
    # json cannot write 1e400 (it is infinite as a float): a marker value, replaced in the text.
    overflow = _records_json([{**valid, first: 271828.18281828}]).replace(
        "271828.18281828", "1e400"
    )
    # 10 MB of valid rows with one bad value at the very end: parsed in full, then refused.
    per_row = len(json.dumps(valid)) + 2
    many = [valid] * (TEN_MB // per_row + 1)
    big = _records_json([*many, {**valid, first: "not a number"}])
    converts = f"column {first}"
    cases = {
        "malformed JSON": (b'{"dataframe_records": [{"symbol": "AAPL",', "valid JSON"),
        "not JSON at all": (b"\xff\xfe\x00 binary", "valid JSON"),
        "empty body": (b"", "valid JSON"),
        "JSON list without a format key": (json.dumps([valid]).encode(), "dataframe_records"),
        "unknown format key": (json.dumps({"rows": [valid]}).encode(), "dataframe_records"),
        "records not a list": (
            json.dumps({"dataframe_records": "AAPL"}).encode(),
            "must be a list of records",
        ),
        "no rows": (_records_json([]).encode(), "missing inputs"),
        "a string for a number": (_records_json([{**valid, first: "high"}]).encode(), converts),
        "a list for a number": (_records_json([{**valid, first: [1, 2]}]).encode(), converts),
        "an object for a number": (_records_json([{**valid, first: {"a": 1}}]).encode(), converts),
        "null value": (
            _records_json([{**valid, first: None}]).encode(),
            f"missing values in column(s) ['{first}']",
        ),
        "missing column": (_records_json([without]).encode(), f"missing inputs ['{second}']"),
        "missing symbol": (
            _records_json([{k: v for k, v in valid.items() if k != "symbol"}]).encode(),
            "missing inputs ['symbol']",
        ),
        "unknown symbol": (
            _records_json([{**valid, "symbol": "ZZZZ"}]).encode(),
            "no model for symbol(s) ['ZZZZ']",
        ),
        "NaN": (nan_row.encode(), f"missing values in column(s) ['{first}']"),
        "Infinity": (inf_row.encode(), f"infinite values in column(s) ['{first}']"),
        "-Infinity": (neg_inf_row.encode(), f"infinite values in column(s) ['{second}']"),
        "1e400 (overflows to infinity)": (
            overflow.encode(),
            f"infinite values in column(s) ['{first}']",
        ),
        "10 MB payload with one bad value": (big.encode(), converts),
    }
    return cases
