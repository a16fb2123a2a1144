"""The training pipeline's modelling slice on an in-memory catalog (no MLflow, no disk)."""

from __future__ import annotations

import pytest
from helpers import run_slice

from stock_mlops.datasets import PyfuncModelDataset
from stock_mlops.pipelines.training import create_pipeline

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scope", ["per_symbol", "pooled"])
def test_config_to_metrics_slice(
    scope, small_features, tiny_ludwig_config, training_params, tmp_path
):
    pipeline = create_pipeline().only_nodes(
        "training.validate_training_config_node",
        "training.train_forecaster_node",
        "training.train_walk_forward_models_node",
        "training.predict_out_of_sample_node",
        "training.compute_evaluation_metrics_node",
    )
    params = training_params.model_copy(update={"scope": scope})
    outputs = run_slice(
        pipeline,
        {
            "ludwig_config": tiny_ludwig_config,
            "features": small_features,
            "params:training": params,
            "params:training.scope": scope,
            "params:team": "red",
            "params:feature_engineering.targets.direction_band": 0.001,
        },
        copy_mode="assign",
        # The model store is the real one: evaluation reads the model back as stored.
        datasets={"forecaster": PyfuncModelDataset(filepath=str(tmp_path / "forecaster"))},
    )
    curves = outputs["training_curves"]
    expected = {"pooled"} if scope == "pooled" else {"AAPL", "MSFT", "NVDA"}
    assert {name.split(".")[1] for name in curves} == expected
    metrics = outputs["evaluation_metrics"]
    assert set(metrics) == {"ludwig", "naive_last_close", "mean_drift", "ridge"}
    assert metrics["ludwig"]["n"] == metrics["naive_last_close"]["n"] > 0
    assert outputs["training_tags"]["scope"] == scope


def test_a_bad_config_stops_before_training(small_features, tiny_ludwig_config, training_params):
    from stock_mlops.pipelines.training.config_validation import LudwigConfigError

    pipeline = create_pipeline().only_nodes("training.validate_training_config_node")
    config = {**tiny_ludwig_config, "model": {"type": "lstm"}}
    with pytest.raises(LudwigConfigError, match="unknown top-level key"):
        run_slice(
            pipeline,
            {
                "ludwig_config": config,
                "features": small_features,
                "params:training.scope": training_params.scope,
            },
        )
