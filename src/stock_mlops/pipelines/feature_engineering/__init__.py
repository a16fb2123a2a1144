"""Leakage-free technical indicators and next-day targets from ``prices`` into ``features``."""

from stock_mlops.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
