"""Model storage: local versioned pyfunc folders, MLflow registration and the champion alias."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from stock_mlops.core.model_handle import AliasUpdate, ModelRegistration
from stock_mlops.datasets.models import (
    ChampionModelDataset,
    PyfuncModelDataset,
    RegisteredModelDataset,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    # An explicit artifact folder: MLflow's default is ./mlruns in the working directory.
    mlflow.create_experiment("models-test", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("models-test")
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


def _rows(small_features):
    return small_features.groupby("symbol").tail(1)


def test_local_model_round_trips_and_versions(tmp_path, tiny_forecaster, small_features):
    dataset = PyfuncModelDataset(filepath=str(tmp_path / "forecaster"), version=Version(None, None))
    assert dataset.load() is None  # nothing trained yet: inference can fall back or stop
    dataset.save(tiny_forecaster["model"])
    handle = PyfuncModelDataset(
        filepath=str(tmp_path / "forecaster"), version=Version(None, None)
    ).load()
    assert handle.version.startswith("local:")
    loaded = handle.load()
    rows = _rows(small_features)
    expected = tiny_forecaster["model"].predict(None, rows)["prediction"].to_numpy()
    assert loaded.predict(rows)["prediction"].to_numpy() == pytest.approx(expected)


def registration(tiny_forecaster) -> ModelRegistration:
    return ModelRegistration(model=tiny_forecaster["handle"], tags={"team": "t", "scope": "x"})


def test_registration_needs_an_active_run(store, tiny_forecaster):
    with pytest.raises(DatasetError, match="active MLflow run"):
        RegisteredModelDataset(model_name="stock_mlops_t").save(registration(tiny_forecaster))


def test_register_then_promote_then_load_champion(store, tiny_forecaster, small_features):
    registry = RegisteredModelDataset(model_name="stock_mlops_t")
    champion = ChampionModelDataset(model_name="stock_mlops_t")
    with mlflow.start_run():
        registry.save(registration(tiny_forecaster))
    info = registry.load()
    assert info["version"] == 1 and info["name"] == "stock_mlops_t"
    assert champion.load() is None

    champion.save(AliasUpdate(candidate_version="1", promote=False, reason="does not beat naive"))
    assert champion.load() is None  # a rejected candidate never becomes champion
    tags = mlflow.MlflowClient().get_model_version("stock_mlops_t", "1").tags
    assert tags["promotion"] == "rejected"
    assert (tags["team"], tags["scope"]) == ("t", "x")  # the registration's tags

    champion.save(AliasUpdate(candidate_version="1", promote=True, reason="beats both"))
    handle = champion.load()
    assert handle.version == "stock_mlops_t/1"
    rows = _rows(small_features)
    served = handle.load().predict(rows)["prediction"].to_numpy()
    expected = tiny_forecaster["model"].predict(None, rows)["prediction"].to_numpy()
    assert served == pytest.approx(expected)


def test_registered_model_rejects_missing_columns(store, tiny_forecaster, small_features):
    with mlflow.start_run():
        RegisteredModelDataset(model_name="stock_mlops_t").save(registration(tiny_forecaster))
    model = mlflow.pyfunc.load_model("models:/stock_mlops_t/1")
    with pytest.raises(Exception, match="rsi_14"):
        model.predict(pd.DataFrame({"symbol": ["AAPL"], "log_return_1d": [0.01]}))


def test_an_empty_registry_starts_with_the_naive_champion(store, small_features):
    champion = ChampionModelDataset(model_name="stock_mlops_t", seed_naive=True)
    handle = champion.load()
    assert handle.version == "stock_mlops_t/1" and handle.kind == "naive_last_close"
    rows = _rows(small_features)
    predicted = handle.load().predict(rows)["prediction"].to_numpy()
    assert (predicted == 0.0).all()  # zero predicted return: the rule places no order
    # Loading again finds it: the registry is seeded once.
    assert ChampionModelDataset(model_name="stock_mlops_t", seed_naive=True).load().version == (
        "stock_mlops_t/1"
    )
    assert mlflow.active_run() is None  # the seeding run is closed


def test_without_seeding_an_empty_registry_has_no_champion(store):
    assert ChampionModelDataset(model_name="stock_mlops_t").load() is None


def test_an_unreachable_registry_is_an_error_naming_the_tracking_uri(monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the probe is gone
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    mlflow.set_tracking_uri(uri)
    try:
        with pytest.raises(DatasetError, match=f"registry at {uri} could not be read"):
            ChampionModelDataset(model_name="stock_mlops_t", seed_naive=True).load()
    finally:
        mlflow.set_tracking_uri(None)
