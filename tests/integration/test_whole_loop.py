"""The default pipeline runs the whole loop offline and leaves every contract dataset behind."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_every_stage_persisted_its_outputs(loop_run):
    root = loop_run.root
    prices = pd.read_parquet(root / "03_primary/prices.parquet")
    assert set(prices["symbol"]) == {"AAPL", "MSFT", "NVDA"}
    features = pd.read_parquet(root / "04_feature/features.parquet")
    assert {"rsi_14", "ema_10", "sma_10", "dema_10"} <= set(features.columns)
    assert features[["rsi_14", "ema_10", "sma_10", "dema_10"]].notna().all().all()

    evaluation = pd.read_parquet(root / "07_model_output/evaluation_predictions.parquet")
    assert set(evaluation["model"]) == {"ludwig", "naive_last_close", "mean_drift", "ridge"}
    metrics = json.loads((root / "08_reporting/evaluation_metrics.json").read_text())
    assert metrics["naive_last_close"]["mase"] == pytest.approx(1.0)

    predictions = pd.read_parquet(root / "07_model_output/predictions.parquet")
    assert set(predictions["symbol"]) == {"AAPL", "MSFT", "NVDA"}
    assert (predictions["target_date"] == pd.Timestamp("2024-01-02")).all()
    assert (predictions["feature_date"] == pd.Timestamp("2023-12-29")).all()

    orders = pd.read_parquet(root / "07_model_output/orders.parquet")
    assert orders["client_order_id"].str.startswith("base-20231229-").all()
    assert (root / "03_primary/broker/local_account.json").exists()

    equity = pd.read_parquet(root / "07_model_output/backtest_equity.parquet")
    assert list(equity.columns) == ["date", "equity", "benchmark_equity"]
    assert equity["date"].min() > pd.Timestamp("2022-06-30")
    backtest = json.loads((root / "08_reporting/backtest_metrics.json").read_text())
    assert {"total_return", "sharpe", "max_drawdown", "benchmark_total_return"} <= set(backtest)

    report = (root / "08_reporting/monitoring_report.html").read_text()
    assert "evidently" in report.lower() and "Feature drift" in report


def test_monitoring_leaves_its_alert_outcomes_workspace_and_metrics(loop_run, tracking):
    import mlflow

    root = loop_run.root
    alert = json.loads((root / "08_reporting/monitoring_alert.json").read_text())
    assert isinstance(alert["alert"], bool) and alert["run_date"] == "2023-12-29"
    assert {t["name"] for t in alert["tests"]} >= {"drift_share", "mae_return_vs_naive"}
    assert alert["drift_reference"]["source"] in {"training_window", "sessions_before_current"}
    outcomes = pd.read_csv(root / "07_model_output/prediction_outcomes.csv")
    assert {"predicted_close", "actual_close", "predicted_return", "actual_return"} <= set(
        outcomes.columns
    )
    # One drift and one quality snapshot for the run date, however often monitoring ran.
    index = json.loads(
        (root / "08_reporting/evidently_workspace/stock_mlops_runs.json").read_text()
    )
    (entries,) = index.values()
    assert sorted((e["run_date"], e["kind"]) for e in entries.values()) == [
        ("2023-12-29", "drift"),
        ("2023-12-29", "quality"),
    ]
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="metrics.`monitoring.drift_share` >= 0"
    )
    assert len(runs) >= 1
    assert {"metrics.monitoring.mae_return", "metrics.monitoring.directional_accuracy"} <= set(
        runs.columns
    )


def test_inference_rerun_appends_nothing(loop_run, tracking):
    log_path = loop_run.root / "07_model_output/predictions.parquet"
    before = pd.read_parquet(log_path)
    loop_run.run("inference")
    after = pd.read_parquet(log_path)
    pd.testing.assert_frame_equal(before, after)


def test_trading_rerun_submits_nothing_new(loop_run, tracking):
    account = loop_run.root / "03_primary/broker/local_account.json"
    state_before = json.loads(account.read_text())
    loop_run.run("trading")
    state_after = json.loads(account.read_text())
    assert state_after["orders"] == state_before["orders"]
    assert state_after["cash"] == state_before["cash"]
    orders = pd.read_parquet(loop_run.root / "07_model_output/orders.parquet")
    rerun = orders[orders["run_id"] == orders["run_id"].iloc[-1]]
    assert not (rerun["status"] == "approved").any()


def test_a_ludwig_config_that_does_not_parse_names_the_file(loop_run, tracking, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("input_features:\n  - {name: rsi_14, type: number\noutput_features: [\n")
    models = loop_run.root / "06_models/forecaster"
    versions_before = sorted(p.name for p in models.iterdir())
    metrics_before = (loop_run.root / "08_reporting/evaluation_metrics.json").read_bytes()
    with pytest.raises(Exception) as failure:
        loop_run.run("training", training={"ludwig_config": str(broken)})
    assert str(broken) in str(failure.value)
    # Nothing already stored was replaced by the failed run.
    assert sorted(p.name for p in models.iterdir()) == versions_before
    assert (loop_run.root / "08_reporting/evaluation_metrics.json").read_bytes() == metrics_before


@pytest.mark.parametrize(
    ("pipeline", "output"),
    [
        ("training", "08_reporting/evaluation_metrics.json"),
        ("backtest", "08_reporting/backtest_metrics.json"),
        ("monitoring", "08_reporting/monitoring_report.html"),
    ],
)
def test_each_pipeline_runs_alone_from_persisted_outputs(loop_run, tracking, pipeline, output):
    path = loop_run.root / output
    before = path.stat().st_mtime_ns
    loop_run.run(pipeline)
    assert path.stat().st_mtime_ns > before
