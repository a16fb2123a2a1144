"""The fault suite: real processes killed with SIGKILL at chosen fault points
(``stock_mlops/faults.py``), re-run, and what they stored checked against a run without faults
(``harness.compare`` and ``harness.problems``).

Quick part: a log append killed at each file change of its save. Slow part: ``kedro run``
processes (about a minute each on a shared 2-core machine) killed at node boundaries and inside
saves, and three runs at once. The sweep over every point of ``harness.kill_points`` (and the
same on S3) is ``benchmarks/bench_fault_sweep.py``; the S3 server dying mid-save is
``test_s3_faults.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from faults import harness

# Low enough that the seeded predictions place orders on both days (the default 0.5% does not).
PARAMS = {"trading.threshold": 0.001}
FIRST, SECOND = harness.DAYS[0], harness.DAYS[1]


def _run(root: Path, day: str, tracking: Path, fault: str = "", extra=None) -> harness.Run:
    return harness.kedro_run(root, day, tracking, fault, extra, **PARAMS)


def _assert_ok(run: harness.Run) -> None:
    assert run.ok, f"kedro run failed ({run.returncode}):\n{run.output[-4000:]}"


@pytest.fixture(scope="module")
def daily(tmp_path_factory) -> dict:
    """A storage root after a clean first day (the state every fault case starts from), and the
    reference: that root after a clean, traced second day."""
    folder = tmp_path_factory.mktemp("faults")
    tracking = folder / "mlflow.db"
    base = folder / "base"
    base.mkdir()
    harness.seed_predictions(str(base))
    _assert_ok(_run(base, FIRST, tracking))
    reference = folder / "reference"
    harness.copy_storage(str(base), str(reference))
    trace_file = folder / "trace.jsonl"
    traced = _run(
        reference, SECOND, tracking, "trace@-", {"STOCK_MLOPS_FAULT_TRACE": str(trace_file)}
    )
    _assert_ok(traced)
    return {
        "folder": folder,
        "tracking": tracking,
        "base": base,
        "reference": harness.canonical(str(reference)),
        "reference_problems": harness.problems(str(reference)),
        "trace": harness.trace(trace_file),
    }


def _change(entries: list[dict], dataset: str, wanted) -> str:
    """The fault point right before the first file change of ``dataset``'s save for which
    ``wanted(event, name, earlier)`` holds (``earlier``: the changes before it)."""
    for entry in entries:
        if entry.get("save") != dataset:
            continue
        changes = entry["changes"]
        for k, (event, name) in enumerate(changes, start=1):
            if wanted(event, name, changes[: k - 1]):
                return f"save:{dataset}#{k}"
    raise AssertionError(f"no such file change in the save of {dataset}: {entries}")


def _rename_of(prefix: str):
    return lambda event, name, _: event == "os.rename" and name.startswith(prefix)


def _after_intent(event, name, earlier) -> bool:
    # The first change once the submission intent is renamed into place: the order is decided
    # and announced, the broker not yet told (the submission's journal entry comes next).
    if not earlier or earlier[-1][0] != "os.rename":
        return False
    folders = [n for e, n in earlier if e == "os.mkdir"]
    return bool(folders) and folders[-1] == "intents"


# Kill points that matter most, chosen from the reference's trace by what the file change is.
CASES = {
    # A node boundary: the decisions are logged, nothing is submitted yet.
    "between deciding and submitting": lambda t: "before:trading.build_submission_node",
    # Inside the broker: the intent is written, the order not journaled.
    "after the submission intent": lambda t: _change(t, "broker_orders", _after_intent),
    # The journal entry is written, the account file (its cache) is not.
    "between journal and account file": lambda t: _change(
        t, "broker_account", lambda e, n, _: e == "open" and n.startswith(".local_account.json")
    ),
    # (An append-only log killed before its rename: the quick test below, at every file change.)
    # A table's temporary file left behind (the next save sweeps it).
    "prices before its rename": lambda t: _change(t, "prices", _rename_of(".prices.parquet.tmp-")),
}


@pytest.mark.slow
def test_reference_run_traces_every_node_and_save(daily):
    points = harness.kill_points(daily["trace"])
    nodes = [p for p in points if p.startswith("before:")]
    assert "before:data_ingestion.clean_prices_node" in nodes
    assert "before:trading.report_account_node" in nodes
    assert {"save:broker_orders#1", "save:orders#1", "save:prices#1"} <= set(points)
    assert daily["reference_problems"] == []
    # The second day filled what the first ordered: the cases below have orders and fills to lose.
    assert sum(daily["reference"]["broker fills"].values()) > 0
    assert sum(daily["reference"]["orders"].values()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_killed_run_then_rerun_loses_and_duplicates_nothing(daily, case, tmp_path):
    point = CASES[case](daily["trace"])
    root = tmp_path / "root"
    harness.copy_storage(str(daily["base"]), str(root))

    killed = _run(root, SECOND, daily["tracking"], f"kill@{point}")
    assert killed.killed, (
        f"{point} was never reached ({killed.returncode}):\n{killed.output[-3000:]}"
    )
    rerun = _run(root, SECOND, daily["tracking"])
    _assert_ok(rerun)

    report = harness.compare(harness.canonical(str(root)), daily["reference"])
    wrong = {kind: r for kind, r in report.items() if r["lost"] or r["duplicated"]}
    assert wrong == {}, f"after a kill at {point}: {wrong}"
    assert harness.problems(str(root)) == []


@pytest.mark.slow
def test_three_concurrent_trading_runs_end_with_one_set_of_orders(daily, tmp_path):
    root = tmp_path / "root"
    harness.copy_storage(str(daily["base"]), str(root))
    started = time.monotonic()
    processes = [harness.start(root, SECOND, daily["tracking"], **PARAMS) for _ in range(3)]
    runs = [harness.finish(process, started) for process in processes]
    for run in runs:
        _assert_ok(run)

    report = harness.compare(harness.canonical(str(root)), daily["reference"])
    wrong = {kind: r for kind, r in report.items() if r["lost"] or r["duplicated"]}
    assert wrong == {}, f"after three concurrent runs: {wrong}"
    assert harness.problems(str(root)) == []


# ------------------------------------------------------------------------------ quick part
_CHILD = textwrap.dedent(
    """
    import os, sys
    import pandas as pd
    from stock_mlops.datasets.tables import AppendOnlyParquetDataset
    from stock_mlops.faults import fault_hooks

    path, day = sys.argv[1], sys.argv[2]
    (hook,) = fault_hooks()
    log = AppendOnlyParquetDataset(filepath=path, key_columns=["date"])
    hook.before_dataset_saved("account_history")
    log.save(pd.DataFrame({"date": [day], "equity": [1.0]}))
    hook.after_dataset_saved("account_history")
    """
)


def _append(path: Path, day: str, fault: str = "trace@-", trace: Path | None = None):
    extra = {"STOCK_MLOPS_FAULT_TRACE": str(trace)} if trace else None
    env = harness.run_env(path.parent, path.parent / "unused.db", fault, extra)
    return subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), day],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_fault_hook_without_the_variable(monkeypatch):
    from stock_mlops.faults import FAULT_VARIABLE, FaultInjectionHook, fault_hooks

    monkeypatch.delenv(FAULT_VARIABLE, raising=False)
    assert fault_hooks() == ()
    with pytest.raises(ValueError, match="unknown action 'explode'"):
        FaultInjectionHook("explode@end")


def test_append_killed_at_every_file_change_keeps_the_log(tmp_path):
    """A real process appending to an append-only log is killed right before each file change
    of its save (lock guard, lock file, temporary file, rename, lock removal), one case per
    change; no logged row is lost and the next append completes and cleans up."""
    base = tmp_path / "base"
    base.mkdir()
    first = _append(base / "history.parquet", "2024-01-02")
    assert first.returncode == 0, first.stderr
    traced, trace = tmp_path / "traced", tmp_path / "trace.jsonl"
    shutil.copytree(base, traced)
    second = _append(traced / "history.parquet", "2024-01-03", trace=trace)
    assert second.returncode == 0, second.stderr
    (save,) = [entry for entry in harness.trace(trace) if "save" in entry]
    points = [k for k, (event, _) in enumerate(save["changes"], start=1) if event != "os.mkdir"]
    assert any(save["changes"][k - 1][0] == "os.rename" for k in points)

    for k in points:
        data = tmp_path / f"case-{k}"
        shutil.copytree(base, data)
        log = data / "history.parquet"
        killed = _append(log, "2024-01-03", f"kill@save:account_history#{k}")
        assert killed.returncode == -9, f"change {k}: {killed.stderr}"
        dates = list(pd.read_parquet(log)["date"])
        assert dates in (["2024-01-02"], ["2024-01-02", "2024-01-03"]), f"change {k}: {dates}"

        again = _append(log, "2024-01-03")
        assert again.returncode == 0, f"change {k}: {again.stderr}"
        assert list(pd.read_parquet(log)["date"]) == ["2024-01-02", "2024-01-03"]
        left = [p.name for p in data.iterdir() if ".tmp-" in p.name or p.name.endswith(".lock")]
        assert left == [], f"change {k}: {left}"
