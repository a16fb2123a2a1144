"""Next-trading-day predictions appended to the ``predictions`` log."""

from stock_mlops.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
