"""Project settings (see https://docs.kedro.org/en/stable/configure/configuration_basics/)."""

import os
import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from stock_mlops.hooks import ParameterValidationHook


def _project_root() -> Path:
    """The Kedro project containing the working directory (else this package's checkout)."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8"):
            return folder
    return Path(__file__).resolve().parents[2]


def local_tracking_uri(relative: str = "mlflow/mlflow.db") -> str:
    """A SQLite MLflow store inside the project, anchored to its root, not the working directory."""
    database = _project_root() / relative
    database.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"


def local_artifact_location(relative: str = "mlflow/artifacts") -> str | None:
    """Artifacts next to the local store; None (the server's own store) with a remote server."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    folder = _project_root() / relative
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


# kedro-mlflow's own PythonModel triggers this MLflow advice at import; it is not actionable here.
warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")

HOOKS = (ParameterValidationHook(),)

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
    },
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}
