"""Daily prices from a source into validated, adjusted ``prices`` and a ``data_quality_report``."""

from stock_mlops.pipelines.data_ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
