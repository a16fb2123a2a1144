"""The monitoring pipeline with Kedro's runner, its workspace a real evidently workspace."""

from __future__ import annotations

import pytest
from helpers import evaluation_rows, prediction_log, run_slice
from monitoring_helpers import CARD, PARAMS, feature_kinds

from stock_mlops.datasets import AtomicDataset, EvidentlyWorkspaceDataset
from stock_mlops.pipelines.monitoring import create_pipeline


def test_pipeline_contract():
    pipeline = create_pipeline()
    assert pipeline.inputs() == {
        "features",
        "feature_kinds",
        "deployed_model_card",
        "evaluation_predictions",
        "predictions",
        "prices",
        "params:monitoring",
        "params:team",
        "params:run_date",
    }
    # The alert and the outcomes are read by later nodes, and persisted for other pipelines.
    assert {"prediction_outcomes", "monitoring_alert"} <= pipeline.all_outputs()
    assert pipeline.outputs() == {
        "monitoring_summary",
        "monitoring_metrics_mlflow",
        "monitoring_report",
        "monitoring_workspace",
    }


def _run(inputs: dict, root) -> dict:
    """One slice run into files under ``root`` (the runner releases memory datasets once read)."""
    stored = {
        "monitoring_workspace": EvidentlyWorkspaceDataset(path=str(root / "evidently")),
        "monitoring_alert": AtomicDataset(
            dataset="json.JSONDataset", filepath=str(root / "monitoring_alert.json")
        ),
        # As in the catalog: CSV, dates parsed back.
        "prediction_outcomes": AtomicDataset(
            dataset={
                "type": "pandas.CSVDataset",
                "save_args": {"index": False},
                "load_args": {"parse_dates": ["date"]},
            },
            filepath=str(root / "prediction_outcomes.csv"),
        ),
    }
    outputs = run_slice(create_pipeline(), inputs, datasets=stored)
    return {**outputs, **{name: dataset.load() for name, dataset in stored.items()}}


@pytest.mark.slow
def test_rerunning_a_run_date_keeps_one_snapshot_set(small_prices, small_features, tmp_path):
    inputs = {
        "features": small_features,
        "feature_kinds": feature_kinds(),
        "deployed_model_card": CARD,
        "evaluation_predictions": evaluation_rows(small_features),
        "predictions": prediction_log(small_features, "2023-06-30"),
        "prices": small_prices,
        "params:monitoring": PARAMS,
        "params:team": "red",
        "params:run_date": "2023-12-28",
    }
    first = _run(inputs, tmp_path)
    second = _run(inputs, tmp_path)
    stored, again = first["monitoring_workspace"], second["monitoring_workspace"]

    assert stored[["project", "run_date", "kind"]].values.tolist() == [
        ["red", "2023-12-28", "drift"],
        ["red", "2023-12-28", "quality"],
    ]
    # The same date again replaced its snapshots: still one drift and one quality report.
    assert again[["project", "run_date", "kind"]].equals(stored[["project", "run_date", "kind"]])
    assert set(again["snapshot_id"]).isdisjoint(stored["snapshot_id"])
    assert first["monitoring_alert"] == second["monitoring_alert"]
    assert first["monitoring_alert"]["run_date"] == "2023-12-28"
    assert first["monitoring_summary"]["drift_windows"]["current"]["end"] == "2023-12-28"
    outcomes = first["prediction_outcomes"]
    assert {"predicted_close", "actual_close", "predicted_return", "actual_return"} <= set(outcomes)
    assert outcomes["date"].dtype.kind == "M" and len(outcomes) == len(
        second["prediction_outcomes"]
    )
    assert "Feature drift" in first["monitoring_report"]
