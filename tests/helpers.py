"""Helpers shared by the tests (import with ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from stock_mlops.sources.files import BundledSource

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT / "tests" / "fixtures"
SMALL_SYMBOLS = ("AAPL", "MSFT", "NVDA")


def load_conf(name: str, env: str = "base") -> dict[str, Any]:
    """One YAML file of conf/<env> without Kedro's resolvers (tests that need them use Kedro)."""
    return yaml.safe_load((PROJECT / "conf" / env / name).read_text())


def raw_batch(symbols: tuple[str, ...] = SMALL_SYMBOLS) -> dict[str, Any]:
    """What the raw-price archive would load after fetching ``symbols`` from the snapshot."""
    source = BundledSource()
    return {
        "request": {"source": "bundled", "symbols": list(symbols), "settings": {}},
        "fetched_at": "20240101T000000000000Z",
        "payloads": {s: [source.fetch(s)] for s in symbols},
        "failures": [],
    }


def run_slice(pipeline: Pipeline, inputs: dict[str, Any], copy_mode: str | None = None) -> dict:
    """Runs a pipeline on an in-memory catalog holding ``inputs``; returns its final outputs.

    Intermediate outputs are released by Kedro's runner once consumed, as in a real run.
    """
    catalog = DataCatalog(
        {name: MemoryDataset(data, copy_mode=copy_mode) for name, data in inputs.items()}
    )
    for name in pipeline.all_outputs():
        catalog[name] = MemoryDataset(copy_mode=copy_mode)
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.outputs()}


def run_kedro(
    pipeline: str,
    *,
    env: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Runs a registered pipeline of this project in-process, as ``kedro run`` would.

    Callers set ``MLFLOW_TRACKING_URI`` (and storage) to temporary locations first.
    """
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env, runtime_params=params or {}) as session:
        session.run(pipeline_names=[pipeline])


def evaluation_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Out-of-sample rows of a forecaster that is right up to +0.1% (validation 2022, test 2023)."""
    rows = features[features["target_close_1d"].notna() & (features["date"] > "2022-01-01")]
    split = np.where(rows["target_date"] <= pd.Timestamp("2022-12-31"), "validation", "test")
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "date": rows["target_date"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "model": "ludwig",
            "split": split,
            "fold": "holdout",
            "last_close": rows["close"].to_numpy(),
            # A forecaster that is right up to a small error.
            "prediction": rows["target_close_1d"].to_numpy() * 1.001,
            "actual": rows["target_close_1d"].to_numpy(),
            "predicted_direction": "up",
        }
    )


def prediction_log(features: pd.DataFrame, date: str) -> pd.DataFrame:
    """Team red's live prediction log for one day: +1% on every symbol."""
    rows = features[features["date"] == date]
    return pd.DataFrame(
        {
            "team": "red",
            "symbol": rows["symbol"],
            "feature_date": rows["date"],
            "target_date": rows["target_date"],
            "last_close": rows["close"],
            "prediction": rows["close"] * 1.01,
            "predicted_return": 0.01,
        }
    )
