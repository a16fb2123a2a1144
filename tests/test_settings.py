"""The MLflow tracking URI: the environment's when set to something, else the project's store."""

from __future__ import annotations

from helpers import PROJECT
from kedro.config import OmegaConfigLoader

from stock_mlops import settings


def _tracking_uri() -> str:
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"), env="red", **settings.CONFIG_LOADER_ARGS
    )
    return loader["mlflow"]["server"]["mlflow_tracking_uri"]


def test_the_environment_wins_when_set(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert _tracking_uri() == "http://127.0.0.1:5000"


def test_unset_and_empty_both_mean_the_local_store(monkeypatch):
    local = f"sqlite:///{PROJECT / 'mlflow' / 'mlflow.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _tracking_uri() == local
    # A .env copied from .env.example has `MLFLOW_TRACKING_URI=`, and Dagster's commands load it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert _tracking_uri() == local
