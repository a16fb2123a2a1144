"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

import os
from pathlib import Path

import yaml
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from stock_mlops.dvc_stages import DvcStageGuardHook
from stock_mlops.faults import fault_hooks
from stock_mlops.hooks import (
    FailureReportHook,
    LocalTrackingStoreHook,
    LudwigPreflightHook,
    MlflowRunViewsHook,
    ParameterValidationHook,
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


def local_tracking_uri(relative: str = LOCAL_TRACKING_DB) -> str:
    """A SQLite MLflow store inside the project, anchored to its root, not the working directory.

    Resolving configuration creates nothing: :class:`LocalTrackingStoreHook` creates the folder
    when a run starts.
    """
    return f"sqlite:///{_project_root() / relative}"


def local_artifact_location(relative: str = LOCAL_ARTIFACTS) -> str | None:
    """Artifacts next to the local store; None (the server's own store) with a remote server.

    With ``MLFLOW_TRACKING_URI=sqlite:///<dir>/<file>.db`` the artifacts go to ``<dir>/artifacts``,
    beside that store: a store elsewhere (a test's temporary folder) never fills the project's
    ``mlflow/``. A file store keeps its artifacts itself.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).resolve().parent / "artifacts").as_uri()
    if uri:
        return None
    return (_project_root() / relative).as_uri()


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
    LudwigPreflightHook(),
    MlflowRunViewsHook(),
    StorageLockHook(),
    FailureReportHook(),
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
        "local_artifact_location": local_artifact_location,
        "team_storage_roots": team_storage_roots,
    },
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}
