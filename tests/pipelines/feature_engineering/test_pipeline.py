"""The feature_engineering pipeline run with Kedro's runner, alone and after data_ingestion."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import CONTRACT_FEATURES, raw_batch, run_slice
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_mlops.core import columns as C
from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams
from stock_mlops.pipelines import data_ingestion, feature_engineering
from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
from stock_mlops.pipelines.feature_engineering.nodes import build_features

CONTRACT_COLUMNS = [*CONTRACT_FEATURES, *C.TARGETS]


def test_pipeline_contract():
    pipeline = feature_engineering.create_pipeline()
    assert sorted(n.name for n in pipeline.nodes) == [
        "feature_engineering.build_features_node",
        "feature_engineering.describe_features_node",
    ]
    assert pipeline.inputs() == {"prices", "params:feature_engineering"}
    assert pipeline.outputs() == {"features", "feature_kinds"}


def test_pipeline_turns_prices_into_features(small_prices):
    outputs = run_slice(
        feature_engineering.create_pipeline(),
        {"prices": small_prices, "params:feature_engineering": FeatureEngineeringParams()},
    )

    features = outputs["features"]
    assert set(CONTRACT_COLUMNS) <= set(features.columns)
    assert not features.duplicated([C.SYMBOL, C.DATE]).any()
    pd.testing.assert_frame_equal(
        features, build_features(small_prices, FeatureEngineeringParams())
    )
    # Every feature column's kind, for pipelines that choose features by what they measure.
    kinds = outputs["feature_kinds"]
    assert set(kinds) <= set(features.columns) and set(CONTRACT_FEATURES) <= set(kinds)


def test_parameters_reach_the_node(small_prices):
    outputs = run_slice(
        feature_engineering.create_pipeline(),
        {
            "prices": small_prices,
            "params:feature_engineering": FeatureEngineeringParams.parse(
                {"indicators": {"rsi_window": 7}, "calendar_features": False}
            ),
        },
    )

    columns = set(outputs["features"].columns)
    assert "rsi_7" in columns and "rsi_14" not in columns
    assert "day_of_week" not in columns


def test_pipeline_fails_on_prices_without_volume(small_prices):
    with pytest.raises(ValueError, match="lack column"):
        run_slice(
            feature_engineering.create_pipeline(),
            {
                "prices": small_prices.drop(columns=[C.VOLUME]),
                "params:feature_engineering": FeatureEngineeringParams(),
            },
        )


def test_runs_from_the_outputs_of_data_ingestion():
    ingest = data_ingestion.create_pipeline().only_nodes("data_ingestion.clean_prices_node")
    pipeline = ingest + feature_engineering.create_pipeline()
    raw = raw_batch(("AAPL", "TSLA"))

    catalog = DataCatalog(
        {
            "raw_prices": MemoryDataset(raw),
            "params:data_ingestion": MemoryDataset(DataIngestionParams()),
            "params:run_date": MemoryDataset(None),
            "params:feature_engineering": MemoryDataset(FeatureEngineeringParams()),
            "data_quality_report": MemoryDataset(),
            "features": MemoryDataset(),
        }
    )
    SequentialRunner().run(pipeline, catalog)  # prices passes in memory between the two

    features = catalog.load("features")
    assert sorted(features[C.SYMBOL].unique()) == ["AAPL", "TSLA"]
    assert not catalog.load("data_quality_report")["quarantined"].any()
    prices, _ = clean_prices(raw, DataIngestionParams(), None)
    pd.testing.assert_frame_equal(features, build_features(prices, FeatureEngineeringParams()))
