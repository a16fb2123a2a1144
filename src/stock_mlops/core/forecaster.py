"""Where :class:`~stock_mlops.models.forecaster.StockForecaster` lived before it moved to
``stock_mlops.models``. Models registered earlier were pickled with this module path, so the
name still resolves here, lazily: importing ``stock_mlops.core`` never imports mlflow."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from stock_mlops.models import forecaster  # noqa: PLC0415 - imports mlflow, only on use

    return getattr(forecaster, name)
