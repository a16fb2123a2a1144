"""A lazily loaded model: datasets hand these to nodes so that only the model used is loaded.

This follows Kedro's own pattern for partitioned data (load callables instead of loaded objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd


class Forecaster(Protocol):
    """What nodes use of a trained forecaster (implemented by
    :class:`stock_mlops.models.forecaster.StockForecaster`; declared here so that nodes can be
    typed without importing mlflow)."""

    scope: str
    output_name: str
    output_type: str
    input_columns: list[str]

    @property
    def columns(self) -> list[str]:
        """The columns a request must hold, symbol first."""

    @property
    def symbols(self) -> list[str]:
        """The symbols with a model (empty for a pooled forecaster)."""

    def only(self, symbol: str) -> Forecaster:
        """The same forecaster with one symbol's model."""

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """One ``prediction`` per input row."""


@dataclass(frozen=True)
class ModelHandle:
    """Where a model comes from and how to load it."""

    # Human-readable identity written to the prediction log, e.g. "stock_mlops_red/3".
    version: str
    source: str  # "registry" or "local"
    loader: Callable[[], Any] = field(compare=False, repr=False)
    # What is known without loading it: the registry version's tags (kind, training window).
    tags: dict[str, str] = field(default_factory=dict, compare=False)
    # The MLflow model URI of exactly this version (``models:/stock_mlops_red/3``), when it has
    # one: what a model built on top of it (prediction from prices) copies.
    uri: str | None = None

    def load(self) -> Any:
        """Loads the model (an MLflow ``PyFuncModel``)."""
        return self.loader()

    @property
    def kind(self) -> str:
        """``ludwig`` or ``naive_last_close`` (``ludwig`` when the registry did not say)."""
        return self.tags.get("kind", "ludwig")


@dataclass(frozen=True)
class ModelRegistration:
    """What to register in the model registry: a stored model and the tags of its version."""

    model: ModelHandle
    tags: dict[str, str]


@dataclass(frozen=True)
class AliasUpdate:
    """A promotion decision as a registry instruction: tag the candidate, move the alias or not."""

    candidate_version: str
    promote: bool
    reason: str


@dataclass(frozen=True)
class PriceModelRequest:
    """What to build and register as the team's model for prediction from prices.

    ``source`` is the registered forecaster to wrap (its ``uri`` names the exact version);
    ``example_bars`` holds each symbol's newest ``min_bars`` bars, from which the registered
    model's input example (and a first prediction, as a check) is made.
    """

    source: ModelHandle
    feature_engineering: dict[str, Any]
    min_bars: int
    example_bars: pd.DataFrame
