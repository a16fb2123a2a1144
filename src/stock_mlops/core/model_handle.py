"""A lazily loaded model: datasets hand these to nodes so that only the model used is loaded.

This follows Kedro's own pattern for partitioned data (load callables instead of loaded objects).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelHandle:
    """Where a model comes from and how to load it."""

    # Human-readable identity written to the prediction log, e.g. "stock_mlops_red/3".
    version: str
    source: str  # "registry" or "local"
    loader: Callable[[], Any]

    def load(self) -> Any:
        """Loads the model (an MLflow ``PyFuncModel``)."""
        return self.loader()
