"""`make serve` says plainly when the registry has no champion, instead of MLflow's traceback."""

from __future__ import annotations

import os
import subprocess

import mlflow
import pytest
from helpers import PROJECT

from stock_mlops.registry_check import ModelNotServable, check_model_uri


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return uri


def test_make_serve_without_a_registered_model_is_one_message(store, tmp_path):
    done = subprocess.run(
        ["make", "-s", "serve", "PORT=1", "TEAM=base"],
        cwd=PROJECT,
        env={**os.environ, "MLFLOW_TRACKING_URI": store},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    assert "cannot serve models:/stock_mlops_base@champion: no registered model" in done.stderr
    assert "`make run`" in done.stderr
    assert "mlflow models serve" not in done.stdout  # the server was never started


def test_a_model_without_the_alias_names_its_versions(store, tmp_path):
    client = mlflow.MlflowClient()
    client.create_registered_model("stock_mlops_red")
    for _ in range(2):
        client.create_model_version("stock_mlops_red", source=str(tmp_path))
    with pytest.raises(ModelNotServable) as refused:
        check_model_uri("models:/stock_mlops_red@champion")
    message = str(refused.value)
    assert "no version of 'stock_mlops_red' holds the alias 'champion' (versions: 1, 2)" in message
    assert "MODEL_URI=models:/stock_mlops_red/2" in message
    with pytest.raises(ModelNotServable, match="has no version 7"):
        check_model_uri("models:/stock_mlops_red/7")
    client.set_registered_model_alias("stock_mlops_red", "champion", "2")
    assert check_model_uri("models:/stock_mlops_red@champion").endswith(
        "version 2 of stock_mlops_red"
    )


def test_the_price_model_points_to_its_build_command(store):
    with pytest.raises(ModelNotServable, match="make price-model"):
        check_model_uri("models:/stock_mlops_blue_prices@champion")


def test_a_local_folder_must_be_a_model(tmp_path):
    with pytest.raises(ModelNotServable, match="no MLmodel file"):
        check_model_uri(str(tmp_path))
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    assert check_model_uri(str(tmp_path)) == f"serving the model folder {tmp_path}"
