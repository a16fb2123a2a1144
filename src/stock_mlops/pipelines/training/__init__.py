"""Ludwig models from the team's config, evaluated against baselines, tracked and registered."""

from __future__ import annotations

from typing import Any

__all__ = ["create_pipeline"]


def __getattr__(name: str) -> Any:
    # The pipeline (and its nodes' pandas, scipy and Ludwig helpers) loads only when Kedro asks
    # for ``create_pipeline``, so the CLI's pre-flight can import this package's pure modules
    # (config rules, the feature registry) and refuse a bad config in a few seconds.
    if name == "create_pipeline":
        from stock_mlops.pipelines.training.pipeline import create_pipeline  # noqa: PLC0415

        return create_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
