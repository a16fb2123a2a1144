"""One real run of the whole daily loop, shared by the integration tests.

It runs `__default__` in-process (as `kedro run` does) on three bundled symbols with a one-epoch
Ludwig config, into a temporary storage root and a temporary MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import run_kedro

SYMBOLS = "AAPL MSFT NVDA"
TINY_CONFIG = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
        {"name": "volatility_20", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}


class LoopRun:
    """Where a loop run put its outputs, and how to run more pipelines against them."""

    def __init__(self, root: Path, tracking_uri: str, config_path: Path) -> None:
        self.root = root
        self.tracking_uri = tracking_uri
        self.config_path = config_path

    def params(self, **extra) -> dict:
        return {
            "storage_root": str(self.root),
            "data_ingestion": {"symbols": SYMBOLS},
            "training": {"ludwig_config": str(self.config_path)},
            **extra,
        }

    def run(self, pipeline: str = "__default__", **extra) -> None:
        run_kedro(pipeline, params=self.params(**extra))


@pytest.fixture(scope="session")
def loop_run(tmp_path_factory) -> LoopRun:
    base = tmp_path_factory.mktemp("loop")
    config_path = base / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(TINY_CONFIG))
    tracking_uri = f"sqlite:///{base / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        run = LoopRun(base / "data", tracking_uri, config_path)
        run.run()
        yield run


@pytest.fixture
def tracking(loop_run, monkeypatch):
    """Points MLflow at the loop's store for the duration of a test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", loop_run.tracking_uri)
    import mlflow

    mlflow.set_tracking_uri(loop_run.tracking_uri)
    return loop_run.tracking_uri
