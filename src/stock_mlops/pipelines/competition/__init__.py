"""Ranks the teams from what each one persisted under its own storage root."""

from stock_mlops.pipelines.competition.pipeline import create_pipeline

__all__ = ["create_pipeline"]
