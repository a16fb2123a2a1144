"""evidently reports on feature drift and on predictions against what really happened."""

from stock_mlops.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
