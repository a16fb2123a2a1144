"""The fault harness: real Kedro runs (``python -m stock_mlops``, as ``make run`` runs them)
killed at chosen points, re-run, and checked.

Used by ``tests/faults/test_faults.py``; :func:`kill_points` lists every node boundary and every
file change of every save of a traced run, for a longer sweep.

What "nothing lost, nothing duplicated" means here, checked by :func:`compare` and
:func:`problems` against a reference run of the same days without faults:

- every row of the deterministic tables (``prices``, ``data_quality_report``, the ``orders``
  log without its run ids and decision times, ``account_history``, ``predictions``) appears
  exactly as often as in the reference;
- every raw object (symbol, SHA-256) appears exactly once, as in the reference;
- the broker account replayed from its journal holds the same orders, fills, positions and cash
  as the reference's, its journal has no gap, and the account file agrees with the replay;
- no append-only log repeats a key, no temporary file of a killed save is left, no run lock is
  held and no submission intent is left unsettled.

Lost = rows or objects of the reference that are missing; duplicated = rows or objects beyond
the reference's count.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[2]
# ``make run``'s route (Kedro's entry point of a packaged project): the same session and
# options as ``kedro run``, without the CLI importing every installed plugin's commands first.
RUN = (sys.executable, "-m", "stock_mlops")
SYMBOLS = ("AAPL", "MSFT", "NVDA")
# Three sessions at the end of the bundled data: the loop of a few daily runs.
DAYS = ("2023-12-26", "2023-12-27", "2023-12-28")
TEAM = "base"
DAILY = "data_ingestion,trading"
ORDER_LOG_KEY = ["client_order_id", "event", "status"]
# Columns that name the run or its clock, not what was stored.
VOLATILE = {"run_id", "decided_at", "created_at"}


@dataclasses.dataclass
class Run:
    """One finished ``kedro run``."""

    returncode: int
    seconds: float
    output: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_env(root: str | Path, tracking: Path, fault: str = "", extra: dict | None = None) -> dict:
    """The environment of a harness run: its own MLflow store, and the fault to inject."""
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT / "src"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tracking}",
        "NO_PROXY": "127.0.0.1,localhost",
        # Rich's wrapping would cut the messages the tests look for.
        "COLUMNS": "250",
    }
    env.pop("STOCK_MLOPS_FAULT", None)
    if fault:
        env["STOCK_MLOPS_FAULT"] = fault
        if not str(root).startswith("s3://"):
            env["STOCK_MLOPS_FAULT_ROOT"] = str(Path(root).resolve())
    env.update(extra or {})
    return env


def command(root: str | Path, day: str, pipelines: str = DAILY, **params: Any) -> list[str]:
    values = {
        "storage_root": str(root),
        "run_date": day,
        "data_ingestion.symbols": " ".join(SYMBOLS),
        **params,
    }
    text = ",".join(f"{key}={value}" for key, value in values.items())
    return [*RUN, "--pipelines", pipelines, "--params", text]


def start(root, day, tracking, fault="", extra=None, pipelines=DAILY, **params) -> subprocess.Popen:
    """Starts a ``kedro run`` (its own process group) without waiting for it."""
    return subprocess.Popen(
        command(root, day, pipelines, **params),
        cwd=PROJECT,
        env=run_env(root, tracking, fault, extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, started: float, timeout: float = 900) -> Run:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"kedro run did not finish in {timeout} s:\n{output[-3000:]}")
    return Run(process.returncode, time.monotonic() - started, output)


def kedro_run(root, day, tracking, fault="", extra=None, pipelines=DAILY, **params) -> Run:
    """Runs ``kedro run`` to its end (or its death)."""
    started = time.monotonic()
    process = start(root, day, tracking, fault, extra, pipelines, **params)
    return finish(process, started)


# ------------------------------------------------------------------------------ seeding
def seed_predictions(root: str, days: tuple[str, ...] = DAYS) -> pd.DataFrame:
    """A prediction log for ``days`` made from the real closes (fixed pseudo-random returns,
    some above the threshold so that orders are placed and filled), written to ``root``."""
    from helpers import raw_batch  # noqa: PLC0415 - the tests' own helper

    from stock_mlops.core import calendar  # noqa: PLC0415
    from stock_mlops.core.params import DataIngestionParams  # noqa: PLC0415
    from stock_mlops.datasets._storage import atomic_write_bytes, filesystem  # noqa: PLC0415
    from stock_mlops.pipelines.data_ingestion.nodes import clean_prices  # noqa: PLC0415

    prices, _ = clean_prices(raw_batch(SYMBOLS), DataIngestionParams(), None)
    rng = np.random.default_rng(15)
    rows = []
    for day in days:
        stamp = pd.Timestamp(day)
        closes = prices[prices["date"] == stamp].set_index("symbol")["close"]
        for symbol in SYMBOLS:
            r = float(rng.normal(0.0, 0.012))
            rows.append(
                {
                    "run_id": "seed",
                    "model_version": "seed",
                    "team": TEAM,
                    "symbol": symbol,
                    "feature_date": stamp,
                    "target_date": calendar.next_session(stamp),
                    "last_close": float(closes[symbol]),
                    "prediction": float(closes[symbol]) * (1 + r),
                    "predicted_return": r,
                    "predicted_direction": "up" if r > 0 else "down",
                    "created_at": stamp + pd.Timedelta(hours=22),
                }
            )
    log = pd.DataFrame(rows)
    fs, _, path = filesystem(f"{str(root).rstrip('/')}/07_model_output/predictions.parquet")
    atomic_write_bytes(fs, path, log.to_parquet(index=False))
    return log


# ------------------------------------------------------------------------------ storage
def copy_storage(source: str, target: str) -> None:
    """Copies a storage root (local folders, or S3 prefixes through s3fs)."""
    from stock_mlops.datasets._storage import filesystem  # noqa: PLC0415

    if not str(source).startswith("s3://"):
        shutil.copytree(source, target, symlinks=True)
        return
    fs, _, src = filesystem(source)
    _, _, dst = filesystem(target)
    for path in fs.find(src):
        fs.copy(path, dst + path[len(src) :])


def files(root: str) -> dict[str, bytes]:
    """Every file under a storage root, by path relative to it."""
    from stock_mlops.datasets._storage import filesystem  # noqa: PLC0415

    fs, _, base = filesystem(root)
    fs.invalidate_cache()
    if not fs.exists(base):
        return {}
    return {path[len(base) :].lstrip("/"): fs.cat_file(path) for path in fs.find(base)}


def _table(content: bytes, name: str) -> pd.DataFrame:
    import io  # noqa: PLC0415

    if name.endswith(".csv"):
        return pd.read_csv(io.BytesIO(content))
    return pd.read_parquet(io.BytesIO(content))


def _rows(frame: pd.DataFrame, drop: set[str] = VOLATILE) -> Counter:
    kept = frame[[c for c in frame.columns if c not in drop]]
    return Counter(
        tuple(
            None if (isinstance(v, float) and np.isnan(v)) or v is pd.NaT or v is None else str(v)
            for v in row
        )
        for row in kept.itertuples(index=False)
    )


def canonical(root: str) -> dict[str, Counter]:
    """What a storage root holds, as multisets that can be compared with a reference's."""
    from stock_mlops.brokers.local import replay  # noqa: PLC0415

    stored = files(root)
    out: dict[str, Counter] = {}
    raw = Counter()
    for path, content in stored.items():
        parts = path.split("/")
        name = parts[-1]
        if parts[:2] == ["01_raw", "prices"] and not name.startswith(".") and name[0].isdigit():
            if not name.endswith(".sha256") and len(parts) == 5:
                import hashlib  # noqa: PLC0415

                raw[(parts[3], hashlib.sha256(content).hexdigest())] += 1
    out["raw objects"] = raw
    for label, path in (
        ("prices", "03_primary/prices.parquet"),
        ("data_quality_report", "08_reporting/data_quality_report.csv"),
        ("account_history", "07_model_output/account_history.parquet"),
        ("predictions", "07_model_output/predictions.parquet"),
    ):
        out[label] = _rows(_table(stored[path], path)) if path in stored else Counter()
    orders_path = "07_model_output/orders.parquet"
    if orders_path in stored:
        orders = _table(stored[orders_path], orders_path)
        decided = orders["event"] == "decided"
        orders.loc[decided, "event_at"] = pd.NaT
        out["orders"] = _rows(orders)
    else:
        out["orders"] = Counter()
    # The journal's entries as the broker reads them (``<n>.json``); a killed save's temporary
    # file beside them is reported by :func:`problems`, not replayed.
    entries = sorted(
        p
        for p in stored
        if p.startswith("03_primary/broker/journal/") and p.rsplit("/", 1)[-1][0].isdigit()
    )
    events = [e for p in entries for e in json.loads(stored[p])["events"]]
    state = replay(events) if events else None
    out["broker orders"] = Counter(
        json.dumps(o, sort_keys=True) for o in (state or {}).get("orders", {}).values()
    )
    out["broker fills"] = Counter(
        json.dumps(f, sort_keys=True) for f in (state or {}).get("fills", [])
    )
    out["broker cash and positions"] = Counter(
        [json.dumps({"cash": state["cash"], "positions": state["positions"]}, sort_keys=True)]
        if state
        else []
    )
    return out


def compare(actual: dict[str, Counter], reference: dict[str, Counter]) -> dict[str, dict]:
    """Per kind of stored thing: how many of the reference's items are lost and how many extra
    copies exist."""
    report = {}
    for kind, theirs in reference.items():
        mine = actual.get(kind, Counter())
        report[kind] = {
            "items": sum(theirs.values()),
            "lost": sum((theirs - mine).values()),
            "duplicated": sum((mine - theirs).values()),
        }
    return report


def problems(root: str) -> list[str]:
    """Invariants every storage root must satisfy after a run completed (see the module doc)."""
    from stock_mlops.datasets.broker import verify_account  # noqa: PLC0415
    from stock_mlops.datasets.locks import StorageLock  # noqa: PLC0415

    found = []
    stored = files(root)
    for path in stored:
        name = path.rsplit("/", 1)[-1]
        if ".tmp-" in name:
            found.append(f"temporary file left: {path}")
        if path.startswith("03_primary/broker/intents/"):
            found.append(f"unsettled submission intent: {path}")
        if name.endswith(".lock") and not name.endswith(".guard"):
            found.append(f"lock still held: {path}")
    if StorageLock.for_root(root).info() is not None:
        found.append("the run lock is held")
    broker = f"{str(root).rstrip('/')}/03_primary/broker"
    if any(p.startswith("03_primary/broker/journal/") for p in stored):
        issue = verify_account(broker)
        if issue:
            found.append(f"account file and journal disagree: {issue}")
    if "07_model_output/orders.parquet" in stored:
        orders = _table(stored["07_model_output/orders.parquet"], "orders.parquet")
        if orders.duplicated(ORDER_LOG_KEY).any():
            found.append("the orders log repeats a key")
    if "07_model_output/account_history.parquet" in stored:
        history = _table(stored["07_model_output/account_history.parquet"], "history.parquet")
        if history.duplicated(["date"]).any():
            found.append("account_history repeats a date")
    return found


def trace(path: Path) -> list[dict]:
    """The trace a ``trace`` run wrote: node starts and saves with their file changes."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def kill_points(entries: list[dict], saves: bool = True) -> list[str]:
    """Every node boundary and (with ``saves``) every file change of every save of a traced run,
    as ``STOCK_MLOPS_FAULT`` points."""
    points = [f"before:{e['node']}" for e in entries if "node" in e]
    if saves:
        for entry in entries:
            if "save" in entry:
                points += [f"save:{entry['save']}#{k}" for k in range(1, len(entry["changes"]) + 1)]
    return [*points, "end"]
