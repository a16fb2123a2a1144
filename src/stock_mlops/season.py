"""The season replay: the real daily loop for every NYSE session in a range, then the competition.

Each day is exactly the run a schedule would start (``kedro run --env <team> --params
run_date=<day>``: the ``__default__`` pipeline, its retrain policy included), executed in this one
process so that a day without retraining costs seconds rather than a fresh interpreter's imports.
Teams are replayed one after the other, each over the whole range, then the competition ranks them.

A day that succeeds leaves a marker under the team's storage root (``season/<day>.json``); a
re-run skips those days, so an interrupted replay resumes where it stopped. A day that fails
stops the replay with the team and the day named; every earlier day's state is intact because
each day's datasets are written atomically and the logs are append-only.

The console shows one progress line a day and any warning. Each day's full Kedro log (its INFO
lines: nodes, datasets, the retrain decision) goes to ``season/<day>.log`` beside the marker,
or ``season/<day>.failed.log`` (with the error's traceback) for the day that failed, on any
storage the root is on; rendering some four hundred INFO lines a day in the console cost most
of a second a day.

    python -m stock_mlops.season --start 2023-07-03 --end 2023-12-29 --teams "red blue"
    make season START=2023-07-03 END=2023-12-29 TEAMS="red blue"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.datasets._storage import atomic_write_bytes, filesystem

logger = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[2]


# A team process's progress line, as _progress_line writes it:
# "red: day 3 of 120 (2023-07-06) in 9.1 s; ..."
_DAY_LINE = re.compile(r": day \d+ of \d+ \((\d{4}-\d{2}-\d{2})\)")


# Beside a failed day's marker path: its log, with the traceback.
FAILED_LOG = ".failed.log"


class SeasonError(RuntimeError):
    """A day of the replay failed, or the replay was asked for something impossible."""


@dataclass
class SeasonReport:
    """What a replay did: per team, the days run and skipped and their durations."""

    sessions: list[str]
    days_run: dict[str, list[str]] = field(default_factory=dict)
    days_skipped: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    competition_seconds: float | None = None


def season_sessions(start: str, end: str) -> list[str]:
    """The NYSE sessions from ``start`` to ``end`` inclusive, as ISO dates.

    Raises:
        SeasonError: When the range holds no session or is reversed.
    """
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    if first > last:
        raise SeasonError(f"the season starts ({first.date()}) after it ends ({last.date()})")
    sessions = calendar.sessions_between(first, last)
    if sessions.empty:
        raise SeasonError(f"no NYSE session between {first.date()} and {last.date()}")
    return [str(day.date()) for day in sessions]


def _team_params(team: str, params: dict[str, Any], storage_prefix: str | None) -> dict[str, Any]:
    if storage_prefix is None:
        return dict(params)
    return {**params, "storage_root": f"{storage_prefix.rstrip('/')}/{team}"}


def _storage_root(team: str, params: dict[str, Any]) -> str:
    """The team's storage root as its runs will resolve it."""
    if "storage_root" in params:
        return str(params["storage_root"])
    from stock_mlops.settings import team_storage_roots  # noqa: PLC0415

    roots = team_storage_roots()
    if team not in roots:
        raise SeasonError(
            f"unknown team environment '{team}': teams are the folders under conf/ whose "
            f"globals.yml names a team ({', '.join(sorted(roots)) or 'none found'})"
        )
    root = roots[team]
    return root if "://" in root or root.startswith("/") else str(PROJECT / root)


class _DayLog(logging.Handler):
    """One day's INFO log, kept in memory while the console handlers show warnings only."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a malformed log call must not fail the day
            self.handleError(record)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        root = logging.getLogger()
        consoles = [(h, h.level) for h in root.handlers if h.level < logging.WARNING]
        for handler, _ in consoles:
            handler.setLevel(logging.WARNING)
        root.addHandler(self)
        try:
            yield
        finally:
            root.removeHandler(self)
            for handler, level in consoles:
                handler.setLevel(level)


def _log_path(marker: str, suffix: str) -> str:
    """Where a day's log lies: beside its marker, ``<day><suffix>``."""
    return marker.removesuffix(".json") + suffix


def _write_log(fs: Any, marker: str, suffix: str, log: _DayLog) -> str:
    """Stores a day's log beside its marker; returns its path."""
    path = _log_path(marker, suffix)
    atomic_write_bytes(fs, path, ("\n".join(log.lines) + "\n").encode())
    return path


def _write_failed_log(fs: Any, marker: str, log: _DayLog, exc: BaseException) -> str:
    """Stores the failed day's log with the error's traceback (Kedro logs no traceback);
    returns where it is, or why it could not be stored (the day's error must still surface)."""
    log.lines.extend("".join(traceback.format_exception(exc)).rstrip().splitlines())
    try:
        return f"that day's log: {_write_log(fs, marker, FAILED_LOG, log)}"
    except Exception as write_error:  # noqa: BLE001 - e.g. the storage that failed the day
        return f"its log could not be stored: {write_error}"


def _marker(root: str, day: str) -> tuple[Any, str]:
    fs, _, path = filesystem(f"{root.rstrip('/')}/season/{day}.json")
    return fs, path


def replay_season(
    start: str,
    end: str,
    teams: Sequence[str],
    *,
    params: dict[str, Any] | None = None,
    storage_prefix: str | None = None,
    competition: bool = True,
    progress: Callable[[str], None] | None = None,
) -> SeasonReport:
    """Replays the daily loop of each team for every session in the range, then the competition.

    Args:
        start: First day (ISO date; the first session on or after it).
        end: Last day (the last session on or before it).
        teams: Team environments (``red``, ``blue``, ...).
        params: Extra runtime parameters for every run (as ``kedro run --params``).
        storage_prefix: Put each team's storage root at ``<prefix>/<team>`` and the
            competition's at ``<prefix>/competition`` (an isolated season); None: each team's
            configured root.
        competition: Run the competition after the teams.
        progress: Where progress lines go.

    Returns:
        What was run and skipped, with the seconds each day took.

    Raises:
        SeasonError: Naming the team and the day that failed.
    """
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    if not teams:
        raise SeasonError("a season needs at least one team (--teams)")
    progress = progress or _say
    params = dict(params or {})
    sessions = season_sessions(start, end)
    report = SeasonReport(sessions=sessions)
    bootstrap_project(PROJECT)
    roots = {t: _storage_root(t, _team_params(t, params, storage_prefix)) for t in teams}
    started = time.perf_counter()
    for team in teams:
        team_params = _team_params(team, params, storage_prefix)
        report.days_run[team], report.days_skipped[team], report.seconds[team] = [], [], []
        for number, day in enumerate(sessions, start=1):
            fs, marker = _marker(roots[team], day)
            if fs.exists(marker):
                report.days_skipped[team].append(day)
                continue
            day_started = time.perf_counter()
            log = _DayLog()
            try:
                with (
                    log.capturing(),
                    KedroSession.create(
                        project_path=PROJECT,
                        env=team,
                        runtime_params={**team_params, "run_date": day},
                    ) as session,
                ):
                    session.run(pipeline_names=["__default__"])
            except Exception as exc:
                stored_log = _write_failed_log(fs, marker, log, exc)
                raise SeasonError(
                    f"team {team}, session {day} (day {number} of {len(sessions)}) failed: "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Days "
                    f"before it are stored; run the same command again to resume from {day}"
                    f" ({stored_log})"
                ) from exc
            seconds = time.perf_counter() - day_started
            _write_log(fs, marker, ".log", log)
            failed = _log_path(marker, FAILED_LOG)
            if fs.exists(failed):  # an earlier attempt's: this day has succeeded since
                fs.rm(failed)
            record = {"team": team, "run_date": day, "seconds": round(seconds, 3)}
            atomic_write_bytes(fs, marker, json.dumps(record).encode())
            report.days_run[team].append(day)
            report.seconds[team].append(seconds)
            progress(_progress_line(team, number, len(sessions), day, seconds, started, report))
    if competition:
        report.competition_seconds = _run_competition(
            KedroSession, teams, roots, params, storage_prefix
        )
        progress(f"competition ranked {', '.join(teams)} in {report.competition_seconds:.1f} s")
    return report


def _run_competition(
    session_class: Any,
    teams: Sequence[str],
    roots: dict[str, str],
    params: dict[str, Any],
    storage_prefix: str | None,
) -> float:
    started = time.perf_counter()
    runtime = {k: v for k, v in params.items() if k != "storage_root"}
    runtime["competition"] = {**runtime.get("competition", {}), "teams": dict(roots)}
    if storage_prefix is not None:
        runtime["storage_root"] = f"{storage_prefix.rstrip('/')}/competition"
    try:
        with session_class.create(project_path=PROJECT, runtime_params=runtime) as session:
            session.run(pipeline_names=["competition"])
    except Exception as exc:
        raise SeasonError(f"the competition after the season failed: {exc}") from exc
    return time.perf_counter() - started


def _progress_line(
    team: str,
    number: int,
    total: int,
    day: str,
    seconds: float,
    started: float,
    report: SeasonReport,
) -> str:
    elapsed = time.perf_counter() - started
    done = sum(len(days) for days in report.days_run.values())
    pending = total - number
    left = pending * elapsed / done if done else 0.0
    return (
        f"{team}: day {number} of {total} ({day}) in {seconds:.1f} s; elapsed "
        f"{_clock(elapsed)}, about {_clock(left)} left for {team}"
    )


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - progress lines are the command's output


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def parse_params(text: str) -> dict[str, Any]:
    """``k=v,k2.sub=v2`` as ``kedro run --params`` reads it (lists separated by spaces)."""
    from omegaconf import OmegaConf  # noqa: PLC0415

    items = [item for item in (text or "").split(",") if item.strip()]
    bad = [item for item in items if "=" not in item]
    if bad:
        raise SeasonError(f"--params items must be key=value, not {bad}")
    return OmegaConf.to_container(OmegaConf.from_dotlist([i.strip() for i in items]))


def replay_teams_side_by_side(
    args: argparse.Namespace,
    teams: Sequence[str],
    params: dict[str, Any],
    *,
    competition: bool,
) -> SeasonReport:
    """Each team's replay in its own process at once (teams share nothing but the MLflow store),
    then the competition here. A failed team stops the season after the others finish."""
    import subprocess  # noqa: PLC0415

    _create_tracking_store()
    base = [sys.executable, "-m", "stock_mlops.season", "--start", args.start, "--end", args.end]
    if args.params:
        base += ["--params", args.params]
    if args.storage_prefix:
        base += ["--storage-prefix", args.storage_prefix]
    processes = {
        team: subprocess.Popen(
            [*base, "--teams", team, "--no-competition"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for team in teams
    }
    outputs: dict[str, list[str]] = {team: [] for team in teams}

    def relay(team: str) -> None:
        # Read every line (a full pipe would stall that team), pass on the progress lines.
        for line in processes[team].stdout:
            outputs[team].append(line.rstrip())
            if line.startswith(f"{team}: day"):
                print(line.rstrip(), flush=True)  # noqa: T201 - progress of that team
            elif line.startswith("season:"):
                print(f"{team}: {line.rstrip()}", flush=True)  # noqa: T201 - its summary

    readers = [threading.Thread(target=relay, args=(team,), daemon=True) for team in teams]
    for reader in readers:
        reader.start()
    failed = {}
    for reader, (team, process) in zip(readers, processes.items(), strict=True):
        code = process.wait()
        reader.join()
        if code != 0:
            lines = outputs[team]
            failed[team] = next(
                (x for x in reversed(lines) if x.startswith("season:")), lines[-1] if lines else ""
            )
    if failed:
        raise SeasonError("; ".join(f"{team}: {why}" for team, why in failed.items()))
    report = SeasonReport(sessions=season_sessions(args.start, args.end))
    for team in teams:
        report.days_run[team], report.days_skipped[team] = days_of(outputs[team], report.sessions)
    if competition:
        from kedro.framework.session import KedroSession  # noqa: PLC0415
        from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

        bootstrap_project(PROJECT)
        roots = {t: _storage_root(t, _team_params(t, params, args.storage_prefix)) for t in teams}
        report.competition_seconds = _run_competition(
            KedroSession, teams, roots, params, args.storage_prefix
        )
        print(f"competition ranked {', '.join(teams)} in {report.competition_seconds:.1f} s")  # noqa: T201
    return report


def days_of(lines: Sequence[str], sessions: Sequence[str]) -> tuple[list[str], list[str]]:
    """The sessions a team's process that succeeded ran (from its progress lines) and skipped
    (every other session: a successful replay leaves none undone)."""
    ran = {m.group(1) for m in map(_DAY_LINE.search, lines) if m}
    return [d for d in sessions if d in ran], [d for d in sessions if d not in ran]


def _create_tracking_store() -> None:
    """Creates the MLflow store the teams share before their processes start: two processes
    opening a new SQLite store at once both run its migrations, and one fails."""
    import os  # noqa: PLC0415

    import mlflow  # noqa: PLC0415

    from stock_mlops.settings import LOCAL_ARTIFACTS, LOCAL_TRACKING_DB, local_tracking_uri  # noqa: PLC0415

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        (PROJECT / LOCAL_TRACKING_DB).parent.mkdir(parents=True, exist_ok=True)
        (PROJECT / LOCAL_ARTIFACTS).mkdir(parents=True, exist_ok=True)
        uri = local_tracking_uri()
    if uri.startswith("sqlite:"):
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m stock_mlops.season",
        description="Replay the daily loop for every session in a range, then the competition.",
    )
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    parser.add_argument("--teams", default="red blue", help='team environments, e.g. "red blue"')
    parser.add_argument("--params", default="", help="extra runtime parameters, as kedro run")
    parser.add_argument("--storage-prefix", default=None, help="put team roots under this folder")
    parser.add_argument("--no-competition", action="store_true", help="skip the competition")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="replay the teams one after the other in this process (default: one process per "
        "team, side by side, when there are several)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    teams = args.teams.replace(",", " ").split()
    try:
        params = parse_params(args.params)
        if len(teams) > 1 and not args.sequential:
            report = replay_teams_side_by_side(
                args, teams, params, competition=not args.no_competition
            )
        else:
            report = replay_season(
                args.start,
                args.end,
                teams,
                params=params,
                storage_prefix=args.storage_prefix,
                competition=not args.no_competition,
            )
    except SeasonError as exc:
        print(f"season: {exc}", file=sys.stderr)  # noqa: T201 - the command's own message
        return 1
    runs = sum(len(days) for days in report.days_run.values())
    skipped = sum(len(days) for days in report.days_skipped.values())
    print(f"season: {runs} daily runs, {skipped} already done")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
