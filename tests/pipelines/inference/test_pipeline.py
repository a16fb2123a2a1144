"""The inference pipeline on an in-memory catalog."""

from __future__ import annotations

import pytest
from helpers import run_slice
from kedro.io.core import Version

from stock_mlops.core.params import InferenceParams
from stock_mlops.datasets.models import PyfuncModelDataset
from stock_mlops.pipelines.inference import create_pipeline

pytestmark = pytest.mark.slow


def test_inference_slice_logs_one_row_per_symbol(tmp_path, tiny_forecaster, small_features):
    PyfuncModelDataset(filepath=str(tmp_path / "f"), version=Version(None, None)).save(
        tiny_forecaster["model"]
    )
    latest = PyfuncModelDataset(filepath=str(tmp_path / "f"), version=Version(None, None)).load()
    outputs = run_slice(
        create_pipeline(),
        {
            "features": small_features,
            "champion_model": None,
            "forecaster": latest,
            "params:inference": InferenceParams(model_source="champion_or_latest"),
            "params:feature_engineering.targets.direction_band": 0.001,
            "params:team": "blue",
            "params:run_date": None,
            "run_info": {"run_id": "r", "started_at": "2024-01-01T00:00:00+00:00"},
        },
        copy_mode="assign",
    )
    log = outputs["predictions"]
    assert len(log) == 3 and set(log["team"]) == {"blue"}
    assert (log["feature_date"] == small_features["date"].max()).all()


def test_inference_slice_without_any_model_fails(small_features):
    from stock_mlops.pipelines.inference.nodes import NoModelError

    with pytest.raises(NoModelError):
        run_slice(
            create_pipeline(),
            {
                "features": small_features,
                "champion_model": None,
                "forecaster": None,
                "params:inference": InferenceParams(),
                "params:feature_engineering.targets.direction_band": 0.001,
                "params:team": "blue",
                "params:run_date": None,
                "run_info": {"run_id": "r", "started_at": "2024-01-01T00:00:00+00:00"},
            },
            copy_mode="assign",
        )
