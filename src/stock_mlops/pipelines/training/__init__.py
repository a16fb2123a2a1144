"""Ludwig models from the team's config, evaluated against baselines, tracked and registered."""

from stock_mlops.pipelines import lazy_create_pipeline

__all__ = ["create_pipeline"]

# The pipeline loads only when Kedro asks for it (see ``lazy_create_pipeline``).
__getattr__ = lazy_create_pipeline(__name__)
