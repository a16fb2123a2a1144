"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from stock_mlops.pipelines.training.pipeline import create_daily_pipeline

# The daily loop of one team, in order. The competition reads every team's outputs, so it runs
# on its own after the teams' loops (`kedro run --pipelines competition`).
DAILY_LOOP = (
    "data_ingestion",
    "feature_engineering",
    "training",
    "inference",
    "trading",
    "backtest",
    "monitoring",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # Kedro loads only the pipelines a run asks for; the default needs the whole loop. In it,
    # training follows the retrain policy (the `training` pipeline alone always trains).
    if all(name in pipelines for name in DAILY_LOOP):
        daily = {**pipelines, "training": create_daily_pipeline()}
        pipelines["__default__"] = sum((daily[name] for name in DAILY_LOOP), Pipeline([]))
    return pipelines
