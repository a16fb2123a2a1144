"""The naive last-close forecaster as a real MLflow pyfunc: every registry's first champion.

Tomorrow's close is today's close, so the predicted return is zero and the trading rule, whose
dead band is positive, places no order. A learned model takes the ``champion`` alias only by
beating this forecaster (and the current champion) at the gate; until then this is what a team
serves and trades with: the honest default.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from stock_mlops.core import columns as C
from stock_mlops.core.vocabulary import NAIVE_MODEL


class NaiveForecaster(mlflow.pyfunc.PythonModel):
    """Predicts a next-day return of zero for every row (a price for ``target_close_1d``).

    Input: rows with ``symbol`` and ``close`` (feature rows carry both; extra columns are
    ignored). Output: one ``prediction`` per row, in the units of :attr:`output_name`.
    """

    scope = "pooled"
    output_type = "number"
    input_columns = [C.CLOSE]
    symbols: list[str] = []
    metadata = {"kind": NAIVE_MODEL}

    def __init__(self, output_name: str = C.TARGET_RETURN) -> None:
        if output_name not in (C.TARGET_RETURN, C.TARGET_CLOSE):
            raise ValueError(
                f"the naive forecaster predicts a return or a close, not {output_name}"
            )
        self.output_name = output_name

    @property
    def columns(self) -> list[str]:
        """What a request must hold."""
        return [C.SYMBOL, C.CLOSE]

    @property
    def input_example(self) -> list[dict[str, Any]]:
        """A request the signature is inferred from."""
        return [{C.SYMBOL: "AAPL", C.CLOSE: 190.0}, {C.SYMBOL: "MSFT", C.CLOSE: 375.0}]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Zero return (or the last close itself) for every row."""
        frame = pd.DataFrame(model_input)
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise MlflowException.invalid_parameter_value(
                f"input lacks column(s) {missing}; the naive forecaster needs {self.columns}"
            )
        close = pd.to_numeric(frame[C.CLOSE], errors="coerce")
        # An infinite close is not a price (and would be served back as Infinity, not JSON).
        if close.isna().any() or not (np.isfinite(close) & (close > 0)).all():
            raise MlflowException.invalid_parameter_value("close must be a finite positive number")
        values = close.to_numpy(dtype=float) if self.output_name == C.TARGET_CLOSE else 0.0
        return pd.DataFrame({"prediction": values}, index=frame.index, dtype=float)
