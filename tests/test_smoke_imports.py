"""The helpers and fixtures work: the slice runner returns a pipeline's outputs."""

from helpers import run_slice

from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering import create_pipeline


def test_run_slice_returns_features(small_prices):
    outputs = run_slice(
        create_pipeline(),
        {"prices": small_prices, "params:feature_engineering": FeatureEngineeringParams()},
    )
    features = outputs["features"]
    assert set(features["symbol"]) == {"AAPL", "MSFT", "NVDA"}
    assert features["rsi_14"].notna().all()
