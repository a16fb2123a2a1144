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


def _artifact_location() -> str | None:
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"), env="red", **settings.CONFIG_LOADER_ARGS
    )
    return loader["mlflow"]["tracking"]["experiment"]["create_experiment_kwargs"][
        "artifact_location"
    ]


def test_a_sqlite_store_elsewhere_keeps_its_artifacts_beside_it(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert _artifact_location() == (tmp_path / "artifacts").as_uri()


def test_the_project_store_and_a_server_keep_their_artifact_locations(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _artifact_location() == (PROJECT / "mlflow" / "artifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert _artifact_location() is None
