"""Shared fixtures: tiny real data. Real data only: the bundled snapshot (cut to a few symbols
and years) and the files under ``tests/fixtures`` (copies of ../shared/data with SOURCES.csv)."""

from __future__ import annotations

import copy
import datetime as dt
import os
import sys
from typing import Any

import pandas as pd
import pytest
from helpers import raw_batch

from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams, TrainingParams
from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
from stock_mlops.pipelines.feature_engineering.nodes import build_features


@pytest.fixture(scope="session")
def small_prices() -> pd.DataFrame:
    """Validated bundled prices of three symbols, 2013-2023."""
    prices, _ = clean_prices(raw_batch(), DataIngestionParams(), None)
    return prices


@pytest.fixture
def market_data(tmp_path, small_prices: pd.DataFrame) -> str:
    """``small_prices`` as a Parquet file: the simulated broker's market data."""
    path = tmp_path / "prices.parquet"
    small_prices.to_parquet(path)
    return str(path)


@pytest.fixture(scope="session")
def small_features(small_prices: pd.DataFrame) -> pd.DataFrame:
    """Features of the three symbols from 2019 (short, but spans every split date below)."""
    features = build_features(small_prices, FeatureEngineeringParams())
    return features[features["date"] >= "2019-01-01"].reset_index(drop=True)


@pytest.fixture
def training_params() -> TrainingParams:
    """Training parameters with a split that fits ``small_features``."""
    return TrainingParams(
        ludwig_config="unused-in-unit-tests.yaml",
        scope="per_symbol",
        split=dict(TRAINING_SPLIT),
        window=None,
        random_seed=1,
    )


# A one-epoch Ludwig config: real training, seconds not minutes.
TINY_LUDWIG_CONFIG = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}
# A hyperopt section in Ludwig's Optuna format: two trials of the learning rate.
TINY_SEARCH = {
    "executor": {"type": "optuna", "num_samples": 2, "sampler": "random"},
    "goal": "minimize",
    "metric": "mean_absolute_error",
    "output_feature": "target_return_1d",
    "split": "validation",
    "parameters": {"trainer.learning_rate": {"space": "loguniform", "lower": 1e-4, "upper": 1e-2}},
}
# Fixed dates: train to mid-2021, validation to mid-2022, the gate to the end of 2022, test 2023.
TRAINING_SPLIT = {
    "train_end": dt.date(2021, 6, 30),
    "validation_end": dt.date(2022, 6, 30),
    "gate_end": dt.date(2022, 12, 30),
}


@pytest.fixture
def tiny_ludwig_config() -> dict[str, Any]:
    """A fresh copy of the one-epoch config (tests may change it)."""
    return copy.deepcopy(TINY_LUDWIG_CONFIG)


@pytest.fixture(scope="session")
def tiny_forecaster(small_features, tmp_path_factory):
    """A real per-symbol Ludwig forecaster trained for one epoch (trained once per session),
    and the handle of its copy in a real local model store."""
    from stock_mlops.datasets import PyfuncModelDataset
    from stock_mlops.pipelines.training.nodes import (
        plan_training,
        train_forecaster,
        validate_training_config,
    )

    params = TrainingParams(
        ludwig_config="tiny.yaml", split=dict(TRAINING_SPLIT), window=None, random_seed=1
    )
    plan = plan_training(small_features, TINY_LUDWIG_CONFIG, params, None)
    validated = validate_training_config(
        copy.deepcopy(TINY_LUDWIG_CONFIG), small_features, params.scope, plan
    )
    forecaster, curves, tags, _ = train_forecaster(small_features, validated, params, "test", plan)
    store = PyfuncModelDataset(filepath=str(tmp_path_factory.mktemp("models") / "forecaster"))
    store.save(forecaster)
    return {
        "model": forecaster,
        "plan": plan,
        "handle": store.load(),
        "curves": curves,
        "tags": tags,
        "config": validated,
        "params": params,
    }


@pytest.fixture
def alpaca_keys(monkeypatch):
    """The fake Alpaca keys in the environment, and loopback kept off any proxy."""
    from fakes.alpaca_server import API_KEY, SECRET_KEY

    monkeypatch.setenv("ALPACA_API_KEY", API_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# ---------------------------------------------------------------------------- browser tests
_BROWSER_SKIPS: list[str] = []


@pytest.fixture(scope="session")
def browser_session():
    """One headless Chromium for the whole session (pages are opened one at a time)."""
    from browser import INSTALL_HINT, Browser, browser_available

    if not browser_available():
        _BROWSER_SKIPS.append("no browser")
        pytest.skip(f"browser test skipped: {INSTALL_HINT}")
    with Browser() as session:
        yield session


@pytest.fixture
def browser(browser_session, request, tmp_path):
    """The session's browser; a failing test leaves a screenshot of its page in its tmp dir."""
    yield browser_session
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        target = tmp_path / "failure.png"
        browser_session.screenshot(target)
        print(f"screenshot of the failing page: {target}")  # noqa: T201


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter):
    if _BROWSER_SKIPS:
        from browser import INSTALL_HINT

        terminalreporter.write_sep("!", "BROWSER TESTS WERE SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"The tests of what people open (HTML pages in a real browser) did not run: "
            f"{INSTALL_HINT}."
        )


_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _mlflow_state_stays_in_its_test():
    """MLflow keeps process-wide state (the active run, the experiment, the tracking URI, and
    the environment variables set_tracking_uri and set_experiment write for subprocesses): a
    test's in-process Kedro run must not hand its store to the next test."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_VARIABLES}
    yield
    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking import fluent

        while mlflow.active_run() is not None:
            mlflow.end_run("KILLED")
        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
