"""MLflow parameters from a nested config and the training data as a run input, on a real store."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
import yaml
from helpers import PROJECT
from mlflow.data.digest_utils import compute_pandas_digest

from stock_mlops.datasets.mlflow_views import (
    MlflowInputDataset,
    MlflowParamsDataset,
    flatten_params,
    frame_digest,
)


@pytest.fixture
def run(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("views-test")
    with mlflow.start_run() as active:
        yield active
    if mlflow.active_run():
        mlflow.end_run()


def test_ludwig_leaves_are_keyed_by_feature_name(tiny_ludwig_config):
    config = {
        **tiny_ludwig_config,
        "combiner": {"type": "concat", "fc_layers": [{"output_size": 32}, {"output_size": 16}]},
        "defaults": {"number": {"preprocessing": {"normalization": "zscore"}}},
        "preprocessing": {},
    }
    flat = flatten_params(config, "ludwig")
    assert flat["ludwig.trainer.learning_rate"] == "0.001"
    assert flat["ludwig.input_features.rsi_14.type"] == "number"
    assert flat["ludwig.output_features.target_return_1d.type"] == "number"
    # Unnamed lists of mappings are keyed by position, lists of values stay one value.
    assert flat["ludwig.combiner.fc_layers.1.output_size"] == "16"
    assert flat["ludwig.defaults.number.preprocessing.normalization"] == "zscore"
    assert flatten_params({"windows": [1, 5, 20], "none": None}, "x") == {
        "x.windows": "[1, 5, 20]",
        "x.none": "None",
    }
    # The same features in another order give the same keys and values.
    swapped = {**config, "input_features": list(reversed(config["input_features"]))}
    assert flatten_params(swapped, "ludwig") == flat


def test_params_are_logged_once_and_long_values_become_tags(run, tiny_ludwig_config):
    dataset = MlflowParamsDataset(prefix="ludwig")
    config = {
        **tiny_ludwig_config,
        "trainer": {**tiny_ludwig_config["trainer"], "note": "x" * 7000},
    }
    dataset.save(config)
    dataset.save(config)  # the same values again: accepted
    stored = mlflow.get_run(run.info.run_id).data
    assert stored.params["ludwig.trainer.learning_rate"] == "0.001"
    assert "ludwig.trainer.note" not in stored.params
    assert stored.tags["ludwig.trainer.note"] == "x" * 7000
    assert dataset.load()["ludwig.combiner.output_size"] == "8"
    # Another value for a logged key cannot replace it; the run goes on (a warning).
    other = {**config, "trainer": {**config["trainer"], "learning_rate": 0.5}}
    dataset.save(other)
    assert mlflow.get_run(run.info.run_id).data.params["ludwig.trainer.learning_rate"] == "0.001"


def test_nothing_is_logged_without_a_run(tmp_path, monkeypatch, small_features):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert mlflow.active_run() is None
    MlflowParamsDataset(prefix="ludwig").save({"a": 1})
    MlflowInputDataset(name="features").save(small_features)


def test_the_digest_covers_the_newest_rows_that_mlflow_s_own_digest_misses(small_features):
    # Three copies under other symbol names: a table longer than MLflow's 10,000-row sample.
    table = pd.concat(
        [small_features.assign(symbol=small_features["symbol"] + s) for s in ("", "X", "Y")],
        ignore_index=True,
    )
    assert len(table) > 10_000
    changed = table.copy()
    changed.loc[changed.index[-1], "close"] += 1.0  # the newest bar of the last symbol
    assert compute_pandas_digest(changed) == compute_pandas_digest(table)
    assert frame_digest(changed) != frame_digest(table)
    assert frame_digest(table.copy()) == frame_digest(table)


def test_training_input_is_recorded_with_source_digest_and_context(run, tmp_path, small_features):
    path = tmp_path / "features.parquet"
    small_features.to_parquet(path)
    dataset = MlflowInputDataset(
        name="features",
        context="training",
        source=str(path),
        targets="target_return_1d",
        tags={"rows": "all"},
    )
    with _no_warning():
        dataset.save(small_features)
    dataset.save(small_features)  # logged twice in one run: still one input
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    recorded = inputs[0]
    assert recorded.dataset.name == "features"
    assert recorded.dataset.digest == frame_digest(small_features)
    assert path.as_uri() in recorded.dataset.source
    assert json.loads(recorded.dataset.profile)["num_rows"] == len(small_features)
    tags = {t.key: t.value for t in recorded.tags}
    assert tags == {"mlflow.data.context": "training", "rows": "all"}


class _no_warning:
    """Fails when the block emits a UserWarning (MLflow's "interpreted in multiple ways")."""

    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings(record=True)
        self._caught = self._catcher.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catcher.__exit__(*exc)
        messages = [str(w.message) for w in self._caught if issubclass(w.category, UserWarning)]
        assert not [m for m in messages if "interpreted in multiple ways" in m], messages


def test_every_mlflow_metric_entry_names_its_prefix_or_key():
    """kedro-mlflow replaces an entry without one (Kedro warns "Replacing dataset") and prefixes
    every metric with the entry's name; this catches such an entry when a branch adds one."""
    catalog = yaml.safe_load((PROJECT / "conf" / "base" / "catalog.yml").read_text())
    needs = {
        "kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset": "prefix",
        "kedro_mlflow.io.metrics.MlflowMetricDataset": "key",
        "kedro_mlflow.io.metrics.MlflowMetricHistoryDataset": "key",
    }
    entries = {
        name: entry
        for name, entry in catalog.items()
        if not name.startswith("_") and isinstance(entry, dict) and entry.get("type") in needs
    }
    assert {"training_curves", "evaluation_metrics_mlflow", "monitoring_metrics_mlflow"} <= set(
        entries
    )
    missing = [n for n, e in entries.items() if e.get(needs[e["type"]]) is None]
    assert not missing, missing
