"""Per-symbol training on a real Dask cluster gives what the serial path gives, and a worker that
dies stops the run with the symbol named and nothing stored changed.

Both runs are real ``kedro run --pipelines training`` sessions (hooks, MLflow, the run lock) on
three symbols with a one-epoch config and a two-trial hyperopt search, so the trials run on the
workers too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_LUDWIG_CONFIG, TINY_SEARCH, TRAINING_SPLIT
from helpers import run_kedro

pytestmark = pytest.mark.slow

SYMBOLS = ("AAPL", "MSFT", "NVDA")
STORED = (
    "04_feature/features.parquet",
    "07_model_output/evaluation_predictions.parquet",
    "08_reporting/evaluation_metrics.json",
)


def _params(root: Path, config: Path, **training) -> dict:
    return {
        "storage_root": str(root),
        "training": {
            "ludwig_config": str(config),
            "window": None,
            "split": {k: str(v) for k, v in TRAINING_SPLIT.items()},
            "random_seed": 1,
            **training,
        },
    }


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, small_features):
    """The training pipeline run serially on three symbols (the reference)."""
    base = tmp_path_factory.mktemp("dask_training")
    config = base / "search.yaml"
    config.write_text(yaml.safe_dump({**TINY_LUDWIG_CONFIG, "hyperopt": TINY_SEARCH}))
    root = base / "serial"
    (root / "04_feature").mkdir(parents=True)
    small_features.to_parquet(root / "04_feature" / "features.parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{base / 'serial.db'}")
        run_kedro("training", params=_params(root, config, executor="serial"))
    return {"base": base, "config": config, "root": root}


@pytest.fixture(scope="module")
def cluster():
    """A real two-worker LocalCluster on loopback; a task whose worker dies is not retried."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
    with local, Client(local) as client:
        yield local, client


def _copy_of(serial_run, name: str) -> Path:
    root = serial_run["base"] / name
    shutil.copytree(serial_run["root"], root)
    return root


def _ludwig_rows(root: Path) -> pd.DataFrame:
    table = pd.read_parquet(root / "07_model_output" / "evaluation_predictions.parquet")
    return table.sort_values(["model", "split", "symbol", "date"]).reset_index(drop=True)


def test_dask_training_gives_the_serial_models_predictions_and_metrics(
    serial_run, cluster, monkeypatch, caplog
):
    from distributed import get_task_stream

    local, client = cluster
    root = _copy_of(serial_run, "dask")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{serial_run['base'] / 'dask.db'}")
    workers = set(client.scheduler_info()["workers"])
    params = _params(
        root,
        serial_run["config"],
        executor="dask",
        dask={"scheduler_address": local.scheduler_address},
    )
    with caplog.at_level("INFO", logger="stock_mlops"), get_task_stream(client) as stream:
        run_kedro("training", params=params)
    # One training task per symbol (its two trials inside) and one prediction task per
    # symbol, spread over both workers, each with one torch thread.
    keys = sorted(str(t["key"]).rsplit("-", 1)[0] for t in stream.data)
    assert keys == [f"{what}-{s}" for what in ("prediction", "training") for s in SYMBOLS]
    assert {t["worker"] for t in stream.data} == workers
    import torch

    assert set(client.run(torch.get_num_threads).values()) == {1}
    assert f"go to the Dask scheduler at {local.scheduler_address}" in caplog.text

    serial, dask = _ludwig_rows(serial_run["root"]), _ludwig_rows(root)
    pd.testing.assert_frame_equal(
        serial.drop(columns="prediction"), dask.drop(columns="prediction")
    )
    assert (serial["prediction"] - dask["prediction"]).abs().max() <= 1e-6
    serial_metrics = pd.read_json(serial_run["root"] / STORED[2], typ="series")
    dask_metrics = pd.read_json(root / STORED[2], typ="series")
    ludwig_serial, ludwig_dask = serial_metrics["ludwig"], dask_metrics["ludwig"]
    for key in ("mae", "mae_return", "directional_accuracy", "n"):
        assert abs(ludwig_serial[key] - ludwig_dask[key]) <= 1e-6, key


def test_the_search_is_recorded_as_child_runs_and_counts_its_trials(serial_run):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{serial_run['base'] / 'serial.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    (parent,) = [r for r in runs if "trials" in r.data.metrics]
    # The deflated Sharpe ratio counts the configurations tried: two.
    assert parent.data.metrics["trials"] == 2
    children = [
        r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id and "trial" in r.data.tags
    ]
    # Two trials for each of the three symbols, each a child run of the training run.
    assert len(children) == 6
    assert {r.data.tags["model"] for r in children} == {"AAPL", "MSFT", "NVDA"}
    for symbol in ("AAPL", "MSFT", "NVDA"):
        mine = [r for r in children if r.data.tags["model"] == symbol]
        best = [r for r in mine if r.data.tags["best"] == "True"]
        assert len(best) == 1
        assert best[0].data.metrics["validation_score"] == min(
            r.data.metrics["validation_score"] for r in mine
        )
        assert {float(r.data.params["trainer.learning_rate"]) for r in mine} != {0.001}


def _digests(root: Path) -> dict[str, str]:
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in STORED}


def test_a_worker_that_dies_stops_the_run_naming_the_symbol_and_changes_nothing(
    serial_run, cluster, monkeypatch
):
    local, client = cluster
    root = _copy_of(serial_run, "killed")
    before = _digests(root)
    models_before = sorted(p.name for p in (root / "06_models").rglob("*"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{serial_run['base'] / 'killed.db'}")
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        # SIGKILL the worker process that is training, as the kernel's OOM killer would.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                worker, keys = next(iter(busy.items()))
                try:
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(str(keys[0]))
                except (KeyError, OSError):  # the task finished meanwhile; try the next one
                    pass
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    params = _params(
        root,
        serial_run["config"],
        executor="dask",
        dask={"scheduler_address": local.scheduler_address},
    )
    with pytest.raises(Exception, match=r"training [A-Z]+ failed: the Dask worker running it died"):
        run_kedro("training", params=params)
    killer.join(timeout=5)
    assert killed and killed[0].split("-")[1] in SYMBOLS
    assert _digests(root) == before
    assert sorted(p.name for p in (root / "06_models").rglob("*")) == models_before


def test_the_champion_is_scored_on_the_gate_per_symbol_on_the_workers_as_serially(
    cluster, small_features, tiny_forecaster
):
    from distributed import get_task_stream

    from stock_mlops.core.params import TrainingParams
    from stock_mlops.pipelines.training.nodes import score_champion_on_gate

    local, client = cluster
    champion, plan = tiny_forecaster["handle"], tiny_forecaster["plan"]

    def scored(**executor) -> pd.DataFrame:
        params = TrainingParams(
            ludwig_config="tiny.yaml", split=dict(TRAINING_SPLIT), window=None, **executor
        )
        return score_champion_on_gate(champion, small_features, plan, params)["predictions"]

    serial = scored(executor="serial")
    with get_task_stream(client) as stream:
        dask = scored(executor="dask", dask={"scheduler_address": local.scheduler_address})
    keys = sorted(str(t["key"]).rsplit("-", 1)[0] for t in stream.data)
    symbols = sorted(champion.load().unwrap_python_model().symbols)
    assert keys == [f"prediction-{s}" for s in symbols]
    assert len(serial) and serial["prediction"].notna().all()
    same = ["symbol", "date"]
    pd.testing.assert_frame_equal(serial[same], dask[same])
    assert (serial["prediction"] - dask["prediction"]).abs().max() <= 1e-6
