"""The fault sweep: real Kedro runs killed at every point of a traced run, re-run, and checked.

What it does (the harness of ``tests/faults/harness.py``, same checks as the fault tests):

1. a clean first day of ``data_ingestion,trading`` on three bundled symbols with seeded
   predictions (orders on day one, fills on day two) gives the base storage root; a clean,
   traced second day on a copy of it gives the reference and the list of kill points
   (``harness.kill_points``: every node boundary, every file change of every save, the end);
2. for each chosen point: a copy of the base root, day two with ``STOCK_MLOPS_FAULT=kill@<point>``
   (SIGKILL there), then day two again; the root is compared with the reference (row multisets
   of the tables and logs, SHA-256 of raw objects, the broker journal's replay) and checked for
   left-over temporary files, locks and intents (``harness.compare`` and ``harness.problems``);
3. ``--concurrent N``: N day-two runs at once on one copy, then the same comparison;
4. ``--s3``: the same on moto's S3 server (its own process, ``tests/fakes/s3_process.py``) for
   the points that fire on an object store (node boundaries, ``saved:``, ``end``), and the S3
   server dying in the middle of a save of ``--s3-die`` datasets (before the PUT reaches it, or
   after it stored it, unanswered), restarted with what it stored, and the day re-run.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_fault_sweep.py --list
    nice -n 10 .venv/bin/python benchmarks/bench_fault_sweep.py [--points nodes|saves|all]
        [--every K] [--save-every K] [--limit N] [--concurrent 3] [--s3] [--out sweep.json]

Each case is two Kedro runs (``python -m stock_mlops``, ``make run``'s route): about 22 s a
case with two sweeps side by side on an otherwise quiet 2-core machine. ``--every K`` takes
every K-th node boundary, ``--save-every K`` every K-th file change of a save (``end`` is
always taken).
``benchmarks/fault_figures.py`` turns the JSON into the README's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
sys.path.insert(0, str(PROJECT / "tests"))

from faults import harness  # noqa: E402

PARAMS = {"trading.threshold": 0.001}
FIRST, SECOND = harness.DAYS[0], harness.DAYS[1]
BUCKET = "fault-sweep"
# Datasets whose save the S3 server dies in by default: the orders log (append-only, under a
# lock object), the broker's journal and account (a new journal object, then the cache).
S3_DIE = ("07_model_output/orders.parquet", "03_primary/broker/local_account.json")
# The dataset (its filepath under the root) that writes a key, when it is not the key itself.
DATASET_OF = {"03_primary/broker/": "03_primary/broker"}
_ERROR_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception): ")


def _run(root, day, tracking, fault="", extra=None) -> harness.Run:
    return harness.kedro_run(root, day, tracking, fault, extra, **PARAMS)


def _must(run: harness.Run, what: str) -> None:
    if not run.ok:
        raise SystemExit(f"{what} failed ({run.returncode}):\n{run.output[-4000:]}")


def _verdict(root: str, reference: dict) -> dict:
    try:
        report = harness.compare(harness.canonical(root), reference)
    except Exception as exc:  # noqa: BLE001 - a root the checks cannot read is a bad case
        return {
            "items": 0,
            "lost": 0,
            "duplicated": 0,
            "wrong_kinds": {},
            "problems": [f"the root cannot be checked: {type(exc).__name__}: {exc}"],
        }
    return {
        "items": sum(r["items"] for r in report.values()),
        "lost": sum(r["lost"] for r in report.values()),
        "duplicated": sum(r["duplicated"] for r in report.values()),
        "wrong_kinds": {k: r for k, r in report.items() if r["lost"] or r["duplicated"]},
        "problems": harness.problems(root),
    }


def prepare(root_of, tracking: Path, folder: Path, extra: dict | None = None) -> dict:
    """The base root (day one) and the reference (day two, traced)."""
    base, reference = root_of("base"), root_of("reference")
    if not str(base).startswith("s3://"):
        Path(base).mkdir(parents=True)
    harness.seed_predictions(str(base))
    _must(_run(base, FIRST, tracking, extra=extra), "the first day")
    harness.copy_storage(str(base), str(reference))
    trace_file = folder / f"trace-{len(list(folder.glob('trace-*')))}.jsonl"
    traced = _run(
        reference,
        SECOND,
        tracking,
        "trace@-",
        {**(extra or {}), "STOCK_MLOPS_FAULT_TRACE": str(trace_file)},
    )
    _must(traced, "the reference day")
    trace = harness.trace(trace_file)
    return {
        "base": str(base),
        "reference": harness.canonical(str(reference)),
        "reference_problems": harness.problems(str(reference)),
        "trace": trace,
    }


def kill_case(state: dict, root: str, point: str, tracking: Path, extra=None) -> dict:
    harness.copy_storage(state["base"], root)
    started = time.monotonic()
    killed = _run(root, SECOND, tracking, f"kill@{point}", extra)
    rerun = _run(root, SECOND, tracking, extra=extra)
    return {
        "case": f"kill at {point}",
        "point": point,
        "fault_fired": killed.killed,
        "killed_returncode": killed.returncode,
        "rerun_ok": rerun.ok,
        "runs": 2,
        "seconds": round(time.monotonic() - started, 1),
        **_verdict(root, state["reference"]),
        "rerun_tail": "" if rerun.ok else rerun.output[-1500:],
    }


def concurrent_case(state: dict, root: str, n: int, tracking: Path, extra=None) -> dict:
    harness.copy_storage(state["base"], root)
    started = time.monotonic()
    processes = [harness.start(root, SECOND, tracking, "", extra, **PARAMS) for _ in range(n)]
    runs = [harness.finish(p, started) for p in processes]
    return {
        "case": f"{n} concurrent day-two runs",
        "point": f"concurrent:{n}",
        "fault_fired": True,
        "rerun_ok": all(r.ok for r in runs),
        "runs": n,
        "seconds": round(time.monotonic() - started, 1),
        **_verdict(root, state["reference"]),
        "rerun_tail": "" if all(r.ok for r in runs) else runs[0].output[-1500:],
    }


def choose(
    points: list[str], kind: str, every: int, save_every: int, limit: int | None, offset: int = 0
) -> list[str]:
    """Every ``every``-th node boundary and every ``save_every``-th file change of a save from
    the ``offset``-th (``kind``: nodes, saves or all), and ``end``; at most ``limit``."""
    nodes = [p for p in points if p.startswith("before:")][::every]
    saves = [p for p in points if p.startswith("save:")][offset::save_every]
    ends = [p for p in points if not p.startswith(("before:", "save:"))]
    chosen = {"nodes": nodes + ends, "saves": saves, "all": nodes + saves + ends}[kind]
    return chosen[:limit] if limit else chosen


def local_sweep(args, folder: Path, tracking: Path) -> dict:
    state = prepare(lambda name: folder / name, tracking, folder)
    points = harness.kill_points(state["trace"])
    if args.list:
        print("\n".join(points))
        return {"points": points, "cases": []}
    chosen = choose(points, args.points, args.every, args.save_every, args.limit, args.save_offset)
    print(f"local: {len(points)} kill points traced, {len(chosen)} chosen", flush=True)
    cases = []
    for i, point in enumerate(chosen):
        case = kill_case(state, str(folder / f"case-{i}"), point, tracking)
        cases.append(case)
        _print(case)
        # Written after every case, so that a sweep stopped early still leaves its figures.
        part = {"storage": "local", "points_traced": len(points), "points": chosen}
        _write(args, [{**part, "cases": cases, "partial": i + 1 < len(chosen)}])
    if args.concurrent:
        case = concurrent_case(state, str(folder / "concurrent"), args.concurrent, tracking)
        cases.append(case)
        _print(case)
    return {
        "storage": "local",
        "points_traced": len(points),
        "points": chosen,
        "reference_problems": state["reference_problems"],
        "cases": cases,
    }


def s3_sweep(args, folder: Path, tracking: Path) -> dict:
    from fakes.s3_process import S3Process

    s3 = S3Process(folder)
    os.environ.update(s3.env())
    extra = {**s3.env(), "AWS_MAX_ATTEMPTS": "2"}
    s3.start()
    try:
        import boto3

        boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        state = prepare(lambda name: f"s3://{BUCKET}/{name}", tracking, folder, extra)
        points = [p for p in harness.kill_points(state["trace"], saves=False)]
        chosen = choose(points, "nodes", args.s3_every, 1, args.s3_limit)
        print(f"s3: {len(points)} kill points traced, {len(chosen)} chosen", flush=True)
        cases = []
        for i, point in enumerate(chosen):
            case = kill_case(state, f"s3://{BUCKET}/case-{i}", point, tracking, extra)
            cases.append({**case, "storage": "s3"})
            _print(case)
        for i, key in enumerate(args.s3_die):
            for when in ("before", "after"):
                root = f"s3://{BUCKET}/die-{i}-{when}"
                case = die_case(s3, state, root, key, when, tracking, extra)
                cases.append(case)
                _print(case)
        if args.concurrent:
            root = f"s3://{BUCKET}/concurrent"
            case = concurrent_case(state, root, args.concurrent, tracking, extra)
            cases.append({**case, "storage": "s3"})
            _print(case)
    finally:
        s3.kill()
    return {
        "storage": "s3",
        "points_traced": len(points),
        "points": chosen,
        "reference_problems": state["reference_problems"],
        "cases": cases,
    }


def die_case(s3, state: dict, root: str, key: str, when: str, tracking: Path, extra) -> dict:
    """The S3 server dies at the day-two PUT of ``key`` (before it stores it, or after,
    unanswered); restarted with what it stored, the day is re-run and compared."""
    harness.copy_storage(state["base"], root)
    path = "/" + root[len("s3://") :] + "/" + key
    s3.restart(die_on=("PUT", f"^{path}$", 1, when))
    started = time.monotonic()
    failed = _run(root, SECOND, tracking, extra=extra)
    died = s3.died()
    s3.restart()
    rerun = _run(root, SECOND, tracking, extra=extra)
    output = failed.output
    dataset = next((d for prefix, d in DATASET_OF.items() if key.startswith(prefix)), key)
    # The error the run ends with (the last one printed) names the dataset being saved.
    final = [line.strip() for line in output.splitlines() if _ERROR_LINE.match(line.strip())]
    reported = final[-1] if final else output[-300:]
    return {
        "case": f"S3 server dies {when} storing {key}",
        "point": f"s3-dies-{when}:{key}",
        "storage": "s3",
        "fault_fired": died and not failed.ok,
        "error_names_dataset": "Failed while saving data to dataset" in reported
        and f"{root}/{dataset}" in reported,
        "error_line": reported[:300],
        "rerun_ok": rerun.ok,
        "runs": 2,
        "seconds": round(time.monotonic() - started, 1),
        **_verdict(root, state["reference"]),
        "rerun_tail": "" if rerun.ok else rerun.output[-1500:],
    }


_STARTED = time.monotonic()


def _write(args, parts: list[dict]) -> dict:
    """The sweep's results so far (written to ``--out`` when given)."""
    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(sys.argv[1:]),
        "seconds": round(time.monotonic() - _STARTED, 1),
        "parts": parts,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str))
    return result


def _print(case: dict) -> None:
    flag = "ok " if _good(case) else "BAD"
    print(
        f"  {flag} {case['case']}: fired={case['fault_fired']} rerun_ok={case['rerun_ok']} "
        f"lost={case['lost']} duplicated={case['duplicated']} problems={case['problems']} "
        f"({case['seconds']} s)",
        flush=True,
    )


def _good(case: dict) -> bool:
    named = case.get("error_names_dataset", True)
    return (
        case["fault_fired"]
        and case["rerun_ok"]
        and not case["lost"]
        and not case["duplicated"]
        and not case["problems"]
        and named
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="only trace and list the points")
    parser.add_argument("--points", choices=("nodes", "saves", "all"), default="all")
    parser.add_argument("--every", type=int, default=1, help="every K-th node boundary")
    parser.add_argument("--save-every", type=int, default=1, help="every K-th save change")
    parser.add_argument("--save-offset", type=int, default=0, help="the first save change taken")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--no-local", action="store_true", help="skip the local sweep")
    parser.add_argument("--concurrent", type=int, default=0, help="N runs at once (0: none)")
    parser.add_argument("--s3", action="store_true", help="also on moto's S3 server")
    parser.add_argument("--s3-every", type=int, default=1)
    parser.add_argument("--s3-limit", type=int, default=None)
    parser.add_argument("--s3-die", nargs="*", default=list(S3_DIE), help="keys under the root")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    parts = []
    with tempfile.TemporaryDirectory(prefix="fault_sweep_") as scratch:
        folder = Path(scratch)
        if not args.no_local or args.list:
            local = folder / "local"
            local.mkdir()
            parts.append(local_sweep(args, local, folder / "local.db"))
        if args.s3 and not args.list:
            remote = folder / "s3"
            remote.mkdir()
            parts.append(s3_sweep(args, remote, folder / "s3.db"))
    if args.list:
        return 0
    cases = [c for part in parts for c in part["cases"]]
    result = _write(args, parts)
    bad = [c for c in cases if not _good(c)]
    print(
        f"\n{len(cases)} cases, {sum(c['runs'] for c in cases)} Kedro runs after the setup, "
        f"lost {sum(c['lost'] for c in cases)}, duplicated {sum(c['duplicated'] for c in cases)}, "
        f"{len(bad)} bad, {result['seconds']:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
