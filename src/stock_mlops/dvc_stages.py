"""What DVC needs from the project that ``dvc.yaml`` cannot compute itself.

- **The team list.** DVC cannot list the folders under ``conf/``, so ``dvc.yaml`` loops
  (``foreach``) over ``dvc/teams.yaml``, which this module writes from the team environments
  (:func:`stock_mlops.settings.team_storage_roots`, the list the competition uses). Adding a team
  is one folder under ``conf/`` plus ``python -m stock_mlops.dvc_stages`` (``make dvc-teams``),
  which also gives the new folder the parameter files the stages read (``{}`` when it overrides
  nothing: DVC refuses a parameters file that does not exist). ``--check`` says what is out of
  date without writing, and names this command.
- **Previous outputs survive a failed stage.** Every output in ``dvc.yaml`` is ``persist: true``,
  so DVC never deletes one before Kedro runs, and Kedro's datasets replace files atomically. A
  run can still fail after saving some of its outputs: :class:`DvcStageGuardHook` copies the
  stage's outputs recorded in ``dvc.lock`` before the pipeline runs and puts them back if it
  fails, so a failed stage leaves the workspace as the last successful run left it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import posixpath
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

TEAMS_FILE = "dvc/teams.yaml"
COMMAND = "python -m stock_mlops.dvc_stages"
# The team parameter files dvc.yaml names: conf/${key}/parameters_<pipeline>.yml.
_TEAM_PARAMS = re.compile(r"conf/\$\{key\}/(parameters_[a-z_]+\.yml)")
_PLACEHOLDER = (
    "# No override: the DVC stages track this file, and DVC refuses one that does not exist.\n"
    "# Written by `{command}`; put this team's values here (keys as in conf/base).\n"
    "{{}}\n"
)
_HEADER = (
    "# Written by `{command}` (make dvc-teams) from the team folders\n"
    "# under conf/: do not edit. dvc.yaml loops over `teams`; the competition stage depends on\n"
    "# `teams_parent`, the folder holding every team's storage root.\n"
    "# tests/test_dvc_stages.py fails when this file is stale.\n"
)


class TeamListError(ValueError):
    """A team environment that the DVC stages cannot version (the message says which and why)."""


@dataclass(frozen=True)
class TeamList:
    """What ``dvc/teams.yaml`` holds, and the placeholder files the team folders lack."""

    teams: dict[str, dict[str, str]]
    teams_parent: str
    missing_params: tuple[str, ...]

    def document(self) -> str:
        """The text of ``dvc/teams.yaml``."""
        body = yaml.safe_dump(
            {"teams": self.teams, "teams_parent": self.teams_parent}, sort_keys=True
        )
        return _HEADER.format(command=COMMAND) + body


def _project_root() -> Path:
    from stock_mlops.settings import _project_root as root  # noqa: PLC0415

    return root()


def _team_parameter_files(project: Path) -> list[str]:
    """The team parameter files the stages of ``dvc.yaml`` read, in order of appearance."""
    text = (project / "dvc.yaml").read_text(encoding="utf-8")
    return list(dict.fromkeys(_TEAM_PARAMS.findall(text)))


def _local_relative(project: Path, team: str, value: str, what: str) -> str:
    """``value`` as a normalised path relative to the project, or a clear refusal."""
    if "://" in value:
        raise TeamListError(
            f"team '{team}': {what} '{value}' is a URL; DVC versions files in the project, so "
            f"the DVC stages need a local {what} (storage_root=s3://... is for runs outside "
            "DVC; the DVC remotes hold the versions, see README)"
        )
    path = Path(value)
    resolved = (path if path.is_absolute() else project / path).resolve()
    try:
        relative = resolved.relative_to(project.resolve())
    except ValueError:
        raise TeamListError(
            f"team '{team}': {what} '{value}' is outside the project; DVC versions only files "
            "inside it"
        ) from None
    if relative == Path("."):
        raise TeamListError(f"team '{team}': {what} '{value}' is the project itself")
    return relative.as_posix()


def collect_team_list(project: Path | None = None) -> TeamList:
    """Reads the team environments under ``conf/`` into what ``dvc.yaml`` loops over.

    Args:
        project: The project root (default: the Kedro project containing the working directory).

    Returns:
        The team list, its common parent folder, and the team parameter files that are missing.

    Raises:
        TeamListError: A team whose folder is not named after it, or whose storage root or Ludwig
            config is not a path inside the project.
    """
    from stock_mlops.settings import team_storage_roots  # noqa: PLC0415

    project = project or _project_root()
    conf = project / "conf"
    base = yaml.safe_load((conf / "base" / "globals.yml").read_text(encoding="utf-8")) or {}
    with contextlib.chdir(project):  # the discovery reads the project of the working directory
        discovered = team_storage_roots()
    teams: dict[str, dict[str, str]] = {}
    for team, root in discovered.items():
        globals_file = conf / team / "globals.yml"
        if not globals_file.is_file():
            raise TeamListError(
                f"team '{team}' is not in conf/{team}/: a team's folder must be named after it "
                "(the DVC stages run `kedro run --env <team>`)"
            )
        values = {**base, **(yaml.safe_load(globals_file.read_text(encoding="utf-8")) or {})}
        ludwig = _local_relative(project, team, str(values["ludwig_config"]), "ludwig_config")
        if not (project / ludwig).is_file():
            raise TeamListError(f"team '{team}': ludwig_config '{ludwig}' does not exist")
        teams[team] = {
            "storage_root": _local_relative(project, team, root, "storage_root"),
            "ludwig_config": ludwig,
        }
    if not teams:
        raise TeamListError("no team under conf/ (a folder whose globals.yml names a team)")
    roots = [t["storage_root"] for t in teams.values()]
    parent = posixpath.commonpath(roots)
    if parent in ("", ".") or parent.split("/")[0] in ("conf", "src", "dvc", "reports"):
        raise TeamListError(
            f"the team storage roots {sorted(roots)} share no data folder (such as data/): "
            "the competition stage depends on the folder holding all of them"
        )
    missing = tuple(
        f"conf/{team}/{name}"
        for team in teams
        for name in _team_parameter_files(project)
        if not (conf / team / name).is_file()
    )
    return TeamList(teams=teams, teams_parent=parent, missing_params=missing)


def stale_reasons(project: Path | None = None) -> list[str]:
    """What is out of date between ``conf/`` and the DVC team list (empty when nothing is).

    Args:
        project: The project root (default: the Kedro project containing the working directory).

    Returns:
        One sentence per problem, each naming the file; the fix is :data:`COMMAND`.
    """
    project = project or _project_root()
    wanted = collect_team_list(project)
    reasons = [f"{path} is missing" for path in wanted.missing_params]
    teams_file = project / TEAMS_FILE
    if not teams_file.is_file():
        reasons.append(f"{TEAMS_FILE} is missing")
    elif teams_file.read_text(encoding="utf-8") != wanted.document():
        reasons.append(f"{TEAMS_FILE} does not match the team folders under conf/")
    return reasons


def write_team_list(project: Path | None = None) -> list[str]:
    """Writes ``dvc/teams.yaml`` and the missing team parameter placeholders.

    Args:
        project: The project root (default: the Kedro project containing the working directory).

    Returns:
        The files written, relative to the project.
    """
    project = project or _project_root()
    wanted = collect_team_list(project)
    written = []
    for relative in wanted.missing_params:
        (project / relative).write_text(_PLACEHOLDER.format(command=COMMAND), encoding="utf-8")
        written.append(relative)
    teams_file = project / TEAMS_FILE
    if not teams_file.is_file() or teams_file.read_text(encoding="utf-8") != wanted.document():
        teams_file.parent.mkdir(parents=True, exist_ok=True)
        teams_file.write_text(wanted.document(), encoding="utf-8")
        written.append(TEAMS_FILE)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m stock_mlops.dvc_stages [--check]``.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 when up to date (or written), 1 when ``--check`` found something stale,
        2 for a team the stages cannot version.
    """
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Write dvc/teams.yaml from the team folders under conf/."
    )
    parser.add_argument("--check", action="store_true", help="only say what is out of date")
    args = parser.parse_args(argv)
    try:
        if args.check:
            reasons = stale_reasons()
            for reason in reasons:
                sys.stderr.write(f"out of date: {reason}; run `{COMMAND}`\n")
            return 1 if reasons else 0
        written = write_team_list()
    except TeamListError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    done = [f"wrote {path}" for path in written] or [f"{TEAMS_FILE} is up to date"]
    sys.stdout.write("\n".join(done) + "\n")
    return 0


# ------------------------------------------------------------------------------ stage guard
_BACKUPS = Path(".dvc") / "tmp" / "stock-mlops-stage-guard"
_MANIFEST = "outputs.json"


def _lock_outputs(dvc_root: Path, stage: str) -> list[str]:
    """The outputs ``dvc.lock`` records for ``stage`` (none before its first successful run)."""
    dvcfile, _, name = stage.rpartition(":")
    lock = dvc_root / (Path(dvcfile).parent if dvcfile else Path()) / "dvc.lock"
    if not lock.is_file():
        return []
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    return [out["path"] for out in stages.get(name, {}).get("outs", [])]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False)
    else:
        shutil.copy2(source, target)


class StageGuard:
    """A copy of one DVC stage's previous outputs, kept while its command runs.

    Args:
        dvc_root: The DVC project root (``DVC_ROOT``).
        stage: The stage's address (``DVC_STAGE``, e.g. ``trading@red``).
    """

    def __init__(self, dvc_root: Path, stage: str) -> None:
        self.root = dvc_root
        self.stage = stage
        self.folder = dvc_root / _BACKUPS / re.sub(r"[^A-Za-z0-9_.-]", "_", stage)

    @classmethod
    def from_environment(cls) -> StageGuard | None:
        """The guard of the stage DVC is running, or None outside ``dvc repro``/``dvc exp``."""
        root, stage = os.environ.get("DVC_ROOT"), os.environ.get("DVC_STAGE")
        return cls(Path(root), stage) if root and stage else None

    def backup(self) -> None:
        """Copies the stage's previous outputs (restoring first any copy a killed run left)."""
        if (self.folder / _MANIFEST).is_file():
            logger.warning("%s: a run that did not finish left outputs behind", self.stage)
            self.restore()
        outputs = _lock_outputs(self.root, self.stage)
        partial = self.folder.with_name(self.folder.name + ".partial")
        _remove(partial)
        partial.mkdir(parents=True)
        existed = []
        for relative in outputs:
            source = self.root / relative
            if source.exists():
                _copy(source, partial / "outs" / relative)
                existed.append(relative)
        manifest = {"stage": self.stage, "outputs": outputs, "existed": existed}
        (partial / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        _remove(self.folder)
        partial.rename(self.folder)
        logger.info("%s: kept a copy of %d previous outputs", self.stage, len(existed))

    def restore(self) -> list[str]:
        """Puts the previous outputs back as they were and drops the copy.

        Returns:
            The outputs put back (relative paths).
        """
        manifest_file = self.folder / _MANIFEST
        if not manifest_file.is_file():
            return []
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        for relative in manifest["outputs"]:
            _remove(self.root / relative)
            if relative in manifest["existed"]:
                _copy(self.folder / "outs" / relative, self.root / relative)
        _remove(self.folder)
        return list(manifest["existed"])

    def discard(self) -> None:
        """Drops the copy after a successful run."""
        _remove(self.folder)


class DvcStageGuardHook:
    """When DVC runs a stage, a failed Kedro run leaves that stage's previous outputs as they were.

    Inactive outside DVC (no ``DVC_STAGE`` in the environment). What no copy can undo is said in
    the README: a model registered in MLflow, or an order an external broker already accepted.
    """

    def __init__(self) -> None:
        self._guard: StageGuard | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._guard = StageGuard.from_environment()
        if self._guard is not None:
            self._guard.backup()

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if self._guard is not None:
            self._guard.discard()
            self._guard = None

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        if self._guard is None:
            return
        restored = self._guard.restore()
        logger.error(
            "%s failed (%s); its previous outputs are back as the last successful run left "
            "them: %s",
            self._guard.stage,
            type(error).__name__,
            ", ".join(restored) or "none existed",
        )
        self._guard = None


if __name__ == "__main__":
    sys.exit(main())
