"""Prediction from prices: the team's champion registered as a model that takes OHLCV bars."""

from stock_mlops.pipelines.serving.pipeline import create_pipeline

__all__ = ["create_pipeline"]
