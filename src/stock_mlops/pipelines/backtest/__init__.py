"""Replays the trading rule over the out-of-sample period on the simulated broker."""

from stock_mlops.pipelines.backtest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
