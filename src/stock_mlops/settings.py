"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

import os
from pathlib import Path

import yaml
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from stock_mlops.dvc_stages import DvcStageGuardHook
from stock_mlops.faults import fault_hooks
from stock_mlops.hooks import (
    DaskClusterHook,
    FailureReportHook,
    LocalTrackingStoreHook,
    LudwigPreflightHook,
    MlflowRunViewsHook,
    ParameterValidationHook,
    StopAfterFailureHook,
    StorageLockHook,
    TeamCredentialsHook,
)


def _project_root() -> Path:
    """The Kedro project containing the working directory (else this package's checkout)."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8"):
            return folder
    return Path(__file__).resolve().parents[2]


LOCAL_TRACKING_DB = "mlflow/mlflow.db"
LOCAL_ARTIFACTS = "mlflow/artifacts"
SQLITE_PREFIX = "sqlite:///"


def local_tracking_uri(relative: str = LOCAL_TRACKING_DB) -> str:
    """A SQLite MLflow store inside the project, anchored to its root, not the working directory.

    Resolving configuration creates nothing: :class:`LocalTrackingStoreHook` creates the folder
    when a run starts.
    """
    return f"sqlite:///{_project_root() / relative}"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when it is set to something, else the local store.

    An empty value counts as unset: a ``.env`` copied from ``.env.example`` leaves the name
    empty, and Dagster's commands load ``.env`` into the environment (``oc.env`` alone would
    then hand kedro-mlflow an empty URI).
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or local_tracking_uri()


def local_artifact_location(relative: str = LOCAL_ARTIFACTS) -> str | None:
    """Artifacts next to the local store; None (the server's own store) with a remote server.

    A SQLite store named by ``MLFLOW_TRACKING_URI`` keeps its artifacts in ``artifacts/`` beside
    its database file, so a store outside the project (a test's, a season's) writes nothing into
    the project's ``mlflow/``.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    if uri.startswith(SQLITE_PREFIX):
        database = Path(uri.removeprefix(SQLITE_PREFIX)).resolve()
        return (database.parent / Path(relative).name).as_uri()
    return (_project_root() / relative).as_uri()


def team_environments() -> list[str]:
    """Every team environment: each ``conf/<env>`` whose ``globals.yml`` names a team.

    One Dagster code location (and job ``<env>_daily``) per entry, as for the competition's teams.
    """
    environments = []
    for folder in sorted((_project_root() / "conf").iterdir()):
        globals_file = folder / "globals.yml"
        if folder.name in ("base", "local") or not globals_file.is_file():
            continue
        if "team" in (yaml.safe_load(globals_file.read_text(encoding="utf-8")) or {}):
            environments.append(folder.name)
    return environments


def team_storage_roots() -> dict[str, str]:
    """Every team environment's storage root: ``team -> storage_root`` of each ``conf/<env>``
    whose ``globals.yml`` names a team (``base`` and ``local`` are not teams).

    The competition's default ``competition.teams`` comes from here, so adding a team is one new
    folder under ``conf/``.
    """
    roots = {}
    for folder in sorted((_project_root() / "conf").iterdir()):
        globals_file = folder / "globals.yml"
        if folder.name in ("base", "local") or not globals_file.is_file():
            continue
        values = yaml.safe_load(globals_file.read_text(encoding="utf-8")) or {}
        if "team" in values:
            roots[str(values["team"])] = str(values.get("storage_root", f"data/{values['team']}"))
    return roots


HOOKS = (
    LocalTrackingStoreHook(),
    TeamCredentialsHook(),
    ParameterValidationHook(),
    # pluggy calls the last registered first: the Ludwig pre-flight refuses a bad config before
    # the run lock touches the storage root.
    StorageLockHook(),
    LudwigPreflightHook(),
    MlflowRunViewsHook(),
    FailureReportHook(),
    StopAfterFailureHook(),
    DaskClusterHook(),
    # Only when the fault suite sets STOCK_MLOPS_FAULT (stock_mlops/faults.py).
    *fault_hooks(),
    # Acts only in a DVC stage: a failed run leaves the previous outputs as they were.
    DvcStageGuardHook(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # A team file changes single leaves; without "soft" it would replace whole sections.
    "merge_strategy": {"parameters": "soft", "globals": "soft", "mlflow": "soft"},
    "custom_resolvers": {
        "oc.env": oc.env,
        "local_tracking_uri": local_tracking_uri,
        "tracking_uri": tracking_uri,
        "local_artifact_location": local_artifact_location,
        "team_storage_roots": team_storage_roots,
    },
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}
