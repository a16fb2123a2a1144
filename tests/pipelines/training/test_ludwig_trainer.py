"""One Ludwig model, really trained: its normalisation statistics come from training rows only."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from stock_mlops.pipelines.training.ludwig_trainer import train_ludwig
from stock_mlops.pipelines.training.splits import labelled_rows, split_rows

pytestmark = pytest.mark.slow


def test_saved_scaler_statistics_equal_the_training_rows(
    small_features, tiny_forecaster, tiny_ludwig_config
):
    parts = split_rows(labelled_rows(small_features), tiny_forecaster["plan"].fold)
    train = parts["train"][parts["train"]["symbol"] == "AAPL"]
    validation = parts["validation"][parts["validation"]["symbol"] == "AAPL"]
    trained = train_ludwig(tiny_ludwig_config, train, validation, seed=1)
    saved = zipfile.ZipFile(io.BytesIO(trained.archive))
    metadata = json.loads(saved.read("training_set_metadata.json"))
    both = [train, validation]
    for feature in ("log_return_1d", "rsi_14"):
        column = train[feature].astype("float32")
        assert metadata[feature]["mean"] == pytest.approx(float(column.mean()), rel=1e-6)
        assert metadata[feature]["std"] == pytest.approx(float(column.std()), rel=1e-6)
        # Ludwig's own preprocessing would have included the validation rows.
        combined = pd.concat(both)[feature].astype("float32")
        assert metadata[feature]["mean"] != pytest.approx(float(combined.mean()), rel=1e-6)


def test_the_stored_forecaster_carries_training_only_statistics(small_features, tiny_forecaster):
    parts = split_rows(labelled_rows(small_features), tiny_forecaster["plan"].fold)
    for symbol, archive in tiny_forecaster["model"].archives.items():
        metadata = json.loads(
            zipfile.ZipFile(io.BytesIO(archive)).read("training_set_metadata.json")
        )
        rows = parts["train"][parts["train"]["symbol"] == symbol]
        expected = float(rows["rsi_14"].astype("float32").mean())
        assert metadata["rsi_14"]["mean"] == pytest.approx(expected, rel=1e-6), symbol
