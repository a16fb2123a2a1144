"""The season replay's cost: seconds per day with and without a retrain, and the whole season.

Runs the real command a user runs (``python -m stock_mlops.season``: red and blue side by side,
each in its own process, then the competition) over ``--sessions`` NYSE sessions from
``--start`` on the bundled symbols, with ``training.retrain.every_sessions=--every`` and each
team's own Ludwig configuration, into a temporary storage prefix and MLflow store. Per-day
seconds come from the markers the replay writes (``<root>/season/<day>.json``); a day counts as
a retrain day when the team's ``training_history`` has a row for it.

Usage::

    .venv/bin/python benchmarks/bench_season.py [--sessions 120] [--every 20] [--params "k=v,..."]

The issue's target: 120 sessions for red and blue under 20 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
TEAMS = ("red", "blue")
# Days at each end of the season whose medians show a trend.
TREND_DAYS = 20


def _sessions(start: str, count: int) -> list[str]:
    from stock_mlops.core import calendar

    days = calendar.sessions_between(pd.Timestamp(start), pd.Timestamp("2023-12-29"))
    if len(days) < count:
        raise SystemExit(f"only {len(days)} bundled sessions from {start}; ask for fewer")
    return [str(day.date()) for day in days[:count]]


def _team_days(root: Path) -> tuple[list[float], list[float]]:
    """Seconds of the days that retrained and of those that did not."""
    history = root / "06_models" / "training_history.parquet"
    retrained = set()
    if history.exists():
        retrained = {str(pd.Timestamp(d).date()) for d in pd.read_parquet(history)["run_date"]}
    with_retrain, without = [], []
    for marker in sorted((root / "season").glob("*.json")):
        record = json.loads(marker.read_text())
        (with_retrain if record["run_date"] in retrained else without).append(record["seconds"])
    return with_retrain, without


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-07-03")
    parser.add_argument("--sessions", type=int, default=120)
    parser.add_argument("--every", type=int, default=20, help="training.retrain.every_sessions")
    parser.add_argument("--params", default="", help="extra runtime parameters, as kedro run")
    args = parser.parse_args()

    days = _sessions(args.start, args.sessions)
    params = f"training.retrain.every_sessions={args.every}"
    if args.params:
        params += f",{args.params}"
    with tempfile.TemporaryDirectory(prefix="bench-season-") as tmp:
        prefix = Path(tmp) / "season"
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        command = [
            sys.executable,
            "-m",
            "stock_mlops.season",
            "--start",
            days[0],
            "--end",
            days[-1],
            "--teams",
            " ".join(TEAMS),
            "--storage-prefix",
            str(prefix),
            "--params",
            params,
        ]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=PROJECT, env=env, check=False)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(f"the season failed (exit {result.returncode})")
            return result.returncode
        print(f"\n{len(days)} sessions ({days[0]}..{days[-1]}), teams {', '.join(TEAMS)}, {params}")
        per_session = wall / len(days)
        print(f"whole season, wall clock: {wall / 60:.1f} min ({per_session:.1f} s per session)")
        for team in TEAMS:
            with_retrain, without = _team_days(prefix / team)
            line = f"{team}: {len(with_retrain)} retrain days"
            if with_retrain:
                line += f" (median {statistics.median(with_retrain):.1f} s)"
            line += f", {len(without)} days without"
            if without:
                line += f" (median {statistics.median(without):.1f} s"
                if len(without) >= 2 * TREND_DAYS:
                    # Whether a day costs more as the season's stored state grows.
                    first = statistics.median(without[:TREND_DAYS])
                    last = statistics.median(without[-TREND_DAYS:])
                    line += f"; first {TREND_DAYS} {first:.1f} s, last {TREND_DAYS} {last:.1f} s"
                line += ")"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
