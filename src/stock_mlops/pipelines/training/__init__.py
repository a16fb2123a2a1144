"""Ludwig models from the team's config, evaluated against baselines, tracked and registered."""

from stock_mlops.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
