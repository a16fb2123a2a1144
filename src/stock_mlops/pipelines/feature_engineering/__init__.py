"""Leakage-free technical indicators and next-day targets from ``prices`` into ``features``."""

from stock_mlops.pipelines import lazy_create_pipeline

__all__ = ["create_pipeline"]

# The pipeline loads only when Kedro asks for it (see ``lazy_create_pipeline``).
__getattr__ = lazy_create_pipeline(__name__)
