"""The storage switch: `storage_root=s3://...` moves every persisted dataset to S3 (moto's real
S3 HTTP API on loopback, reached through s3fs exactly as MinIO would be)."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from helpers import PROJECT, run_kedro

BUCKET = "team-red"


@pytest.fixture
def s3_server(monkeypatch, tmp_path):
    import s3fs
    from moto.server import ThreadedMotoServer

    # s3fs caches filesystems with the endpoint they were created with: start from none.
    s3fs.S3FileSystem.clear_instance_cache()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


def _keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def test_ingestion_and_features_persist_to_s3(s3_server):
    local_prices = PROJECT / "data" / "03_primary" / "prices.parquet"
    before = local_prices.stat().st_mtime_ns if local_prices.exists() else None
    root = f"s3://{BUCKET}/runs/test"
    params = {"storage_root": root, "data_ingestion": {"symbols": "AAPL MSFT"}}

    run_kedro("data_ingestion", params=params)
    run_kedro("feature_engineering", params=params)

    keys = _keys(s3_server, "runs/test/")
    assert "runs/test/03_primary/prices.parquet" in keys
    assert "runs/test/04_feature/features.parquet" in keys
    assert "runs/test/08_reporting/data_quality_report.csv" in keys
    raw = [k for k in keys if k.startswith("runs/test/01_raw/prices/bundled/")]
    assert {k.split("/")[5] for k in raw} == {"AAPL", "MSFT"}
    assert not any("/." in k for k in keys), "no temporary object may be left behind"

    body = s3_server.get_object(Bucket=BUCKET, Key="runs/test/04_feature/features.parquet")["Body"]
    features = pd.read_parquet(pd.io.common.BytesIO(body.read()))
    assert set(features["symbol"]) == {"AAPL", "MSFT"}
    assert {"rsi_14", "ema_10", "sma_10", "dema_10", "target_close_1d"} <= set(features.columns)
    # The project's local data tree was not written by these runs.
    after = local_prices.stat().st_mtime_ns if local_prices.exists() else None
    assert before == after


@pytest.mark.slow
def test_whole_loop_runs_on_s3(s3_server, tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "input_features": [{"name": "rsi_14", "type": "number"}],
                "output_features": [{"name": "target_return_1d", "type": "number"}],
                "trainer": {"epochs": 1},
            }
        )
    )
    params = {
        "storage_root": f"s3://{BUCKET}/loop",
        "data_ingestion": {"symbols": "AAPL MSFT"},
        "training": {"ludwig_config": str(config)},
    }
    run_kedro("__default__", params=params)
    # Inference alone reads the model back from S3 (and appends nothing for the same day).
    run_kedro("inference", params=params)

    keys = _keys(s3_server, "loop/")
    assert any(k.startswith("loop/06_models/forecaster/") and k.endswith("MLmodel") for k in keys)
    assert "loop/03_primary/broker/local_account.json" in keys
    for name in (
        "07_model_output/predictions.parquet",
        "07_model_output/evaluation_predictions.parquet",
        "08_reporting/backtest_metrics.json",
        "08_reporting/monitoring_report.html",
        "08_reporting/monitoring_alert.json",
        "07_model_output/prediction_outcomes.csv",
        "08_reporting/evidently_workspace/stock_mlops_runs.json",
    ):
        assert f"loop/{name}" in keys
    # The evidently workspace on S3: one project, its dashboard and the run date's snapshots.
    workspace = [k for k in keys if k.startswith("loop/08_reporting/evidently_workspace/")]
    assert sum("/snapshots/" in k for k in workspace) == 2
    assert any(k.endswith("/dashboard.json") for k in workspace)
    body = s3_server.get_object(Bucket=BUCKET, Key="loop/07_model_output/predictions.parquet")
    predictions = pd.read_parquet(pd.io.common.BytesIO(body["Body"].read()))
    assert sorted(predictions["symbol"]) == ["AAPL", "MSFT"]
