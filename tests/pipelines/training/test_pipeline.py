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
        "training.plan_training_node",
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
            "params:run_date": None,
            "params:feature_engineering.targets.direction_band": 0.001,
        },
        copy_mode="assign",
        # The model store is the real one: evaluation reads the model back as stored.
        datasets={"forecaster": PyfuncModelDataset(filepath=str(tmp_path / "forecaster"))},
    )
    curves = outputs["training_curves"]
    expected = {"pooled"} if scope == "pooled" else {"AAPL", "MSFT", "NVDA"}
    assert {name.split(".")[1] for name in curves if name != "trials"} == expected
    # No hyperopt section: one configuration tried (what the deflated Sharpe counts).
    assert curves["trials"] == [{"value": 1.0, "step": 0}]
    assert outputs["hyperopt_trials"].empty
    metrics = outputs["evaluation_metrics"]
    assert set(metrics) == {"ludwig", "naive_last_close", "mean_drift", "ridge"}
    assert metrics["ludwig"]["n"] == metrics["naive_last_close"]["n"] > 0
    assert outputs["training_tags"]["scope"] == scope


def test_a_bad_config_stops_before_training(small_features, tiny_ludwig_config, training_params):
    from stock_mlops.pipelines.training.config_validation import LudwigConfigError

    pipeline = create_pipeline().only_nodes(
        "training.plan_training_node", "training.validate_training_config_node"
    )
    config = {**tiny_ludwig_config, "model": {"type": "lstm"}}
    with pytest.raises(LudwigConfigError, match="unknown top-level key"):
        run_slice(
            pipeline,
            {
                "ludwig_config": config,
                "features": small_features,
                "params:training": training_params,
                "params:training.scope": training_params.scope,
                "params:run_date": None,
            },
        )


def test_the_daily_loop_trains_only_when_the_policy_says_so():
    from kedro.framework.project import configure_project

    from stock_mlops.pipeline_registry import register_pipelines

    configure_project("stock_mlops")
    pipelines = register_pipelines()
    daily = {n.name for n in pipelines["__default__"].nodes}
    alone = {n.name for n in pipelines["training"].nodes}
    assert "training.schedule_retraining_node" in daily
    assert "training.plan_training_node" not in daily
    assert "training.plan_training_node" in alone
    # The same fitting and gating nodes either way.
    assert alone - {"training.plan_training_node"} == {
        n for n in daily if n.startswith("training.")
    } - {"training.schedule_retraining_node"}
