"""What the MLflow UI shows of the loop's run: a readable name, MLflow's git tags, the Ludwig
config as parameters, metric names without dataset prefixes, features as the training input;
and the MLflow UI itself (`make ui`) showing the run names in a real browser, offline."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import mlflow
import pandas as pd
import pytest
import requests
from helpers import PROJECT, free_port

from stock_mlops.datasets.mlflow_views import frame_digest

RUN_NAME = "base · __default__ · 2023-12-29"


@pytest.fixture(scope="module")
def default_run(loop_run):
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    experiment = client.get_experiment_by_name("stock_mlops_base")
    runs = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{RUN_NAME}'")
    assert runs, [r.info.run_name for r in client.search_runs([experiment.experiment_id])]
    return runs[-1]  # the loop's own run (the first with this name)


def test_the_run_is_named_after_team_pipelines_and_as_of_session(default_run):
    assert default_run.info.run_name == RUN_NAME
    assert default_run.data.tags["team"] == "base"


def test_mlflow_s_standard_source_tags_name_the_project_s_commit(default_run):
    tags = default_run.data.tags
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(PROJECT)
    assert "git_commit" not in tags
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        pytest.skip("the project is not a git checkout here")
    assert tags["mlflow.source.git.commit"] == head.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}", tags["mlflow.source.git.commit"])
    assert tags["git_dirty"] in {"true", "false"}


def test_every_ludwig_leaf_is_a_parameter(default_run, loop_run):
    params = default_run.data.params
    assert params["ludwig.trainer.learning_rate"] == "0.001"
    assert params["ludwig.trainer.epochs"] == "1"
    assert params["ludwig.combiner.output_size"] == "8"
    assert params["ludwig.input_features.volatility_20.type"] == "number"
    assert params["ludwig.output_features.target_return_1d.type"] == "number"


def test_metric_names_are_the_nodes_keys(default_run):
    metrics = set(default_run.data.metrics)
    assert {"ludwig.test.mae_return", "naive_last_close.test.mae_return"} <= metrics
    assert {"ludwig.AAPL.train_loss"} <= metrics
    assert any(m.startswith("monitoring.") for m in metrics)
    prefixes = ("evaluation_metrics_mlflow", "training_curves", "monitoring_metrics_mlflow")
    assert not [m for m in metrics if m.startswith(prefixes)]


def test_features_are_the_training_input_with_a_digest_of_every_row(default_run, loop_run):
    (recorded,) = default_run.inputs.dataset_inputs
    features = pd.read_parquet(loop_run.root / "04_feature/features.parquet")
    assert recorded.dataset.name == "features"
    assert recorded.dataset.digest == frame_digest(features)
    assert (loop_run.root / "04_feature/features.parquet").as_uri() in recorded.dataset.source
    assert {t.key: t.value for t in recorded.tags}["mlflow.data.context"] == "training"


@pytest.fixture(scope="module")
def mlflow_ui(loop_run):
    """`make ui` on the loop's tracking store; yields the runs link it printed."""
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": loop_run.tracking_uri}
    process = subprocess.Popen(
        ["make", "-s", "ui", f"UI_PORT={port}", "TEAM=base"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    link = None
    try:
        for line in process.stdout:
            if "runs:" in line:
                link = line.split("runs:", 1)[1].strip()
                break
        assert link and link.startswith(f"http://127.0.0.1:{port}/#/experiments/"), link
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, "make ui exited"
            try:
                if requests.get(f"http://127.0.0.1:{port}/", timeout=3).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            raise AssertionError("the MLflow UI did not answer in 300 s")
        yield link
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.browser
def test_the_mlflow_ui_shows_the_run_names(mlflow_ui, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert "workflowType=machine_learning" in mlflow_ui
    experiment_id = re.search(r"/experiments/(\d+)/runs", mlflow_ui)[1]
    browser.open(mlflow_ui)
    run_links = f'a[href*="/experiments/{experiment_id}/runs/"]'

    def names(driver) -> list[str]:
        found = driver.find_elements(By.CSS_SELECTOR, run_links)
        return [a.text.strip() for a in found if a.is_displayed() and a.text.strip()]

    shown = WebDriverWait(browser.driver, 180, poll_frequency=0.5).until(names)
    assert RUN_NAME in shown, shown
    assert browser.assert_visible(run_links, min_width=20, min_height=10)
    assert browser.nonlocal_requests() == []
