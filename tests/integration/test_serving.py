"""`make serve` serves the champion with MLflow's scoring protocol; answers equal batch ones."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
import requests
from helpers import free_port, make_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(loop_run):
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    version = max(int(v.version) for v in client.search_model_versions("name='stock_mlops_base'"))
    client.set_registered_model_alias("stock_mlops_base", "champion", str(version))
    env = {**os.environ, "MLFLOW_TRACKING_URI": loop_run.tracking_uri}
    with make_serve(["TEAM=base"], free_port(), env, timeout=240) as url:
        yield url


def _records(rows: pd.DataFrame) -> list[dict]:
    """Feature rows as JSON records (no date or target columns: the last rows have no target)."""
    dropped = ["date", "target_date", "target_close_1d", "target_return_1d", "target_direction_1d"]
    return rows.drop(columns=dropped).to_dict("records")


def _feature_rows(loop_run) -> pd.DataFrame:
    features = pd.read_parquet(loop_run.root / "04_feature/features.parquet")
    return features[features["date"] == features["date"].max()].reset_index(drop=True)


def test_served_answers_equal_batch_predictions(server, loop_run, tracking):
    rows = _feature_rows(loop_run)
    records = _records(rows)
    response = requests.post(
        f"{server}/invocations", json={"dataframe_records": records}, timeout=60
    )
    assert response.status_code == 200, response.text
    served = [p["prediction"] for p in response.json()["predictions"]]

    # The batch path: the inference pipeline now predicts with the champion. The log also holds
    # make run's rows from the naive champion (version 1), so only the served version counts.
    loop_run.run("inference")
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    champion = client.get_model_version_by_alias("stock_mlops_base", "champion").version
    log = pd.read_parquet(loop_run.root / "07_model_output/predictions.parquet")
    batch = log[log["model_version"] == f"stock_mlops_base/{champion}"].set_index("symbol")
    assert len(batch) == len(rows)
    expected = batch.loc[rows["symbol"], "predicted_return"].to_numpy()
    assert served == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"dataframe_records": [{"symbol": "AAPL"}]}, "rsi_14"),
        ({"no_such_key": []}, "dataframe"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(server, body, fragment):
    response = requests.post(f"{server}/invocations", json=body, timeout=30)
    assert 400 <= response.status_code < 500
    assert fragment in response.text


def test_unknown_symbol_is_a_4xx(server, loop_run):
    record = _records(_feature_rows(loop_run))[0]
    record["symbol"] = "ZZZZ"
    response = requests.post(
        f"{server}/invocations", json={"dataframe_records": [record]}, timeout=30
    )
    assert 400 <= response.status_code < 500
    assert "ZZZZ" in response.text


def test_invalid_json_is_a_4xx(server):
    response = requests.post(
        f"{server}/invocations",
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500
