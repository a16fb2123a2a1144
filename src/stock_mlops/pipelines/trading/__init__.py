"""The team's rules turn predictions into orders on the local or Alpaca paper broker."""

from stock_mlops.pipelines.trading.pipeline import create_pipeline

__all__ = ["create_pipeline"]
