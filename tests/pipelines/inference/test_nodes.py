"""Inference: choose the model, predict the next session for each symbol, log it."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import Version

from stock_mlops.core.model_handle import ModelHandle
from stock_mlops.core.params import InferenceParams
from stock_mlops.datasets.models import PyfuncModelDataset
from stock_mlops.pipelines.inference.nodes import (
    NoModelError,
    feature_rows_as_of,
    predict_next_day,
    select_model,
)

CHAMPION = ModelHandle("stock_mlops_t/2", "registry", lambda: None)
LATEST = ModelHandle("local:2024", "local", lambda: None)


def test_model_selection_prefers_the_champion():
    assert select_model(CHAMPION, LATEST, "champion_or_latest") is CHAMPION
    assert select_model(None, LATEST, "champion_or_latest") is LATEST
    assert select_model(CHAMPION, LATEST, "latest") is LATEST


@pytest.mark.parametrize(
    ("champion", "latest", "source", "message"),
    [
        (None, LATEST, "champion", "registry has no champion"),
        (CHAMPION, None, "latest", "no locally trained model"),
        (None, None, "champion_or_latest", "run the training pipeline"),
    ],
)
def test_missing_model_is_a_clear_error(champion, latest, source, message):
    with pytest.raises(NoModelError, match=message):
        select_model(champion, latest, source)


def test_rows_as_of_run_date(small_features):
    rows = feature_rows_as_of(small_features, "2023-06-30")
    assert set(rows["symbol"]) == {"AAPL", "MSFT", "NVDA"}
    assert (rows["date"] == pd.Timestamp("2023-06-30")).all()
    with pytest.raises(ValueError, match="no feature rows dated 2023-07-01"):
        feature_rows_as_of(small_features, "2023-07-01")  # a Saturday


@pytest.mark.slow
def test_predictions_are_logged_for_the_next_session(tmp_path, tiny_forecaster, small_features):
    dataset = PyfuncModelDataset(filepath=str(tmp_path / "f"), version=Version(None, None))
    dataset.save(tiny_forecaster["model"])
    handle = PyfuncModelDataset(filepath=str(tmp_path / "f"), version=Version(None, None)).load()
    run_info = {"run_id": "r1", "started_at": "2024-01-01T22:00:00+00:00"}
    log = predict_next_day(
        small_features,
        None,
        handle,
        InferenceParams(model_source="latest"),
        0.001,
        "red",
        "2023-06-30",
        run_info,
    )
    assert list(log["symbol"]) == ["AAPL", "MSFT", "NVDA"]
    assert (log["target_date"] == pd.Timestamp("2023-07-03")).all()  # next NYSE session
    assert (log["model_version"] == handle.version).all() and (log["team"] == "red").all()
    rows = small_features[small_features["date"] == "2023-06-30"]
    raw = tiny_forecaster["model"].predict(None, rows)["prediction"].to_numpy()
    assert log["predicted_return"].to_numpy() == pytest.approx(raw)
    assert log["prediction"].to_numpy() == pytest.approx(rows["close"].to_numpy() * (1 + raw))
    assert log["predicted_direction"].isin(["up", "down", "flat"]).all()
