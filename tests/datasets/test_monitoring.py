"""The evidently workspace dataset (one snapshot set per team and run date, locally and on S3)
and the optional document dataset."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from stock_mlops.core.monitoring import MonitoringRun
from stock_mlops.datasets import EvidentlyWorkspaceDataset, OptionalDataset
from stock_mlops.pipelines.monitoring.reports import dashboard


def _snapshot(prices: pd.DataFrame, run_date: str, kind: str, symbol: str = "MSFT"):
    """A real evidently report on a symbol's last five closes up to ``run_date``."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    bars = prices[(prices["symbol"] == symbol) & (prices["date"] <= run_date)].tail(5)
    definition = DataDefinition(timestamp="date", numerical_columns=["close"])
    report = Report([MeanValue(column="close")], metadata={"run_date": run_date, "kind": kind})
    return report.run(
        Dataset.from_pandas(bars[["date", "close"]], data_definition=definition),
        timestamp=dt.datetime.fromisoformat(run_date),
    )


def _run(prices, run_date: str, team: str = "red", symbol: str = "MSFT") -> MonitoringRun:
    return MonitoringRun(
        project=team,
        run_date=dt.date.fromisoformat(run_date),
        snapshots={
            kind: _snapshot(prices, run_date, kind, symbol) for kind in ("drift", "quality")
        },
        dashboard=dashboard(),
        description=f"team {team}",
    )


def _close_mean(workspace, project_id, snapshot_id) -> float:
    model = workspace.get_run(project_id, snapshot_id)
    return float(next(iter(model.metric_results.values())).value)


@pytest.mark.slow  # evidently: seconds to import
def test_each_run_date_keeps_one_snapshot_set(tmp_path, small_prices):
    from evidently.ui.workspace import Workspace

    dataset = EvidentlyWorkspaceDataset(path=str(tmp_path / "ws"))
    dataset.save(_run(small_prices, "2023-12-27"))
    dataset.save(_run(small_prices, "2023-12-28"))
    first = dataset.load()
    dataset.save(_run(small_prices, "2023-12-27", symbol="AAPL"))  # the same date, new figures
    stored = dataset.load()

    assert stored[["run_date", "kind"]].values.tolist() == [
        ["2023-12-27", "drift"],
        ["2023-12-27", "quality"],
        ["2023-12-28", "drift"],
        ["2023-12-28", "quality"],
    ]
    assert set(stored["project"]) == {"red"}
    replaced = first[first["run_date"] == "2023-12-27"]["snapshot_id"]
    assert set(replaced).isdisjoint(stored["snapshot_id"])
    kept = first[first["run_date"] == "2023-12-28"]["snapshot_id"]
    assert set(kept) <= set(stored["snapshot_id"])

    # evidently itself sees four snapshots, and the re-run date holds the new figures.
    workspace = Workspace(str(tmp_path / "ws"))
    project = workspace.search_project("red")[0]
    assert len(workspace.list_runs(project.id)) == 4
    new = stored[stored["run_date"] == "2023-12-27"]["snapshot_id"].iloc[0]
    aapl = small_prices[(small_prices["symbol"] == "AAPL") & (small_prices["date"] <= "2023-12-27")]
    assert _close_mean(workspace, project.id, new) == pytest.approx(aapl["close"].tail(5).mean())
    panels = workspace.get_dashboard(project.id).panels
    assert [p.title for p in panels] == [
        "Share of drifted features",
        "MAE on next-session return (%)",
        "Directional accuracy",
    ]


@pytest.mark.slow  # evidently: seconds to import
def test_a_save_reads_none_of_the_stored_snapshots(tmp_path, small_prices):
    """A daily save costs the same on day 300 as on day 3: it parses no stored snapshot
    (evidently's Workspace object reads them all when it is built)."""
    from evidently.ui.workspace import Workspace

    dataset = EvidentlyWorkspaceDataset(path=str(tmp_path / "ws"))
    dataset.save(_run(small_prices, "2023-12-27"))
    stored = dataset.load()
    project_dir = tmp_path / "ws" / stored["project_id"].iloc[0] / "snapshots"
    old = project_dir / f"{stored['snapshot_id'].iloc[0]}.json"
    old.write_text("{not a snapshot")  # parsing it would fail loudly
    with pytest.raises(ValueError):
        Workspace(str(tmp_path / "ws"))

    dataset.save(_run(small_prices, "2023-12-28"))

    assert dataset.load()["run_date"].tolist() == ["2023-12-27"] * 2 + ["2023-12-28"] * 2
    assert old.read_text() == "{not a snapshot"


@pytest.mark.slow  # evidently: seconds to import
def test_snapshots_the_index_does_not_know_are_replaced_too(tmp_path, small_prices):
    from evidently.ui.workspace import Workspace

    dataset = EvidentlyWorkspaceDataset(path=str(tmp_path / "ws"))
    dataset.save(_run(small_prices, "2023-12-28"))
    # A snapshot for the same date stored behind the index's back (a run stopped halfway).
    workspace = Workspace(str(tmp_path / "ws"))
    project = workspace.search_project("red")[0]
    workspace.add_run(project.id, _snapshot(small_prices, "2023-12-28", "drift"))
    (tmp_path / "ws" / EvidentlyWorkspaceDataset.INDEX_FILE).write_text("{not json")

    dataset.save(_run(small_prices, "2023-12-28"))
    assert len(workspace.list_runs(project.id)) == 2
    index = json.loads((tmp_path / "ws" / EvidentlyWorkspaceDataset.INDEX_FILE).read_text())
    assert sorted(e["kind"] for e in index[str(project.id)].values()) == ["drift", "quality"]


@pytest.mark.slow  # evidently: seconds to import
def test_one_project_per_team(tmp_path, small_prices):
    dataset = EvidentlyWorkspaceDataset(path=str(tmp_path / "ws"))
    dataset.save(_run(small_prices, "2023-12-28", team="red"))
    dataset.save(_run(small_prices, "2023-12-28", team="blue"))
    stored = dataset.load()
    assert sorted(set(stored["project"])) == ["blue", "red"]
    assert stored.groupby("project").size().to_dict() == {"blue": 2, "red": 2}


def test_a_workspace_not_written_yet_cannot_be_loaded(tmp_path):
    with pytest.raises(DatasetError, match="does not exist yet"):
        EvidentlyWorkspaceDataset(path=str(tmp_path / "nothing")).load()


@pytest.fixture
def s3_endpoint(monkeypatch):
    """moto's S3 server on loopback, reached the way every dataset reaches S3."""
    import s3fs
    from moto.server import ThreadedMotoServer

    s3fs.S3FileSystem.clear_instance_cache()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="team-red")
    yield client
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.slow  # evidently: seconds to import
def test_the_workspace_works_on_s3(s3_endpoint, small_prices):
    from evidently.ui.workspace import Workspace

    url = "s3://team-red/root/08_reporting/evidently_workspace"
    dataset = EvidentlyWorkspaceDataset(path=url)
    dataset.save(_run(small_prices, "2023-12-28"))
    dataset.save(_run(small_prices, "2023-12-28"))  # idempotent on S3 too

    pages = s3_endpoint.get_paginator("list_objects_v2").paginate(Bucket="team-red")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    snapshots = [k for k in keys if "/snapshots/" in k]
    assert len(snapshots) == 2
    assert "root/08_reporting/evidently_workspace/stock_mlops_runs.json" in keys
    assert any(k.endswith("/dashboard.json") for k in keys)
    assert dataset.load()["kind"].tolist() == ["drift", "quality"]
    # What `evidently ui --workspace s3://...` reads: evidently's own Workspace on the same URL.
    project = Workspace(url).search_project("red")[0]
    assert len(Workspace(url).list_runs(project.id)) == 2


def test_an_optional_document_is_none_until_written(tmp_path):
    dataset = OptionalDataset(
        dataset="json.JSONDataset", filepath=str(tmp_path / "06_models" / "card.json")
    )
    assert dataset.load() is None
    assert not dataset.exists()
    card = {"train_start": None, "train_end": "2020-12-31"}
    dataset.save(card)
    assert dataset.load() == card
    assert [p.name for p in (tmp_path / "06_models").iterdir()] == ["card.json"]
