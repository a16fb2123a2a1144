"""The deployable model: Ludwig model(s) wrapped as one MLflow pyfunc.

kedro-mlflow cannot log Ludwig's own flavor (its ``log_model`` returns nothing to read the model
URI from), so the trained Ludwig folders are
zipped into bytes held by a small, picklable :class:`StockForecaster`. The same object is saved
locally, logged and registered in MLflow, served by ``mlflow models serve`` and used for batch
inference, so a served answer equals the batch prediction for the same row.

Import this module only where a model is trained or used: it imports mlflow, and loading a model
imports Ludwig and torch.
"""

from __future__ import annotations

import io
import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from stock_mlops.core import columns as C
from stock_mlops.core.vocabulary import POOLED

logger = logging.getLogger(__name__)


def zip_folder(folder: Path) -> bytes:
    """The files of ``folder`` as an in-memory zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


class StockForecaster(mlflow.pyfunc.PythonModel):
    """Predicts a next-day target from feature rows, routing rows to per-symbol or pooled models.

    Input: a DataFrame with ``symbol`` and every column in :attr:`input_columns`.
    Output: a DataFrame with one ``prediction`` per input row, in the output feature's units
    (a price for ``target_close_1d``, a return for ``target_return_1d``, a label for
    ``target_direction_1d``).
    """

    def __init__(
        self,
        *,
        archives: dict[str, bytes],
        input_columns: list[str],
        output_name: str,
        output_type: str,
        scope: str,
        metadata: dict[str, Any],
        input_example: list[dict[str, Any]],
    ) -> None:
        self.archives = archives
        self.input_columns = input_columns
        self.output_name = output_name
        self.output_type = output_type
        self.scope = scope
        self.metadata = metadata
        self.input_example = input_example
        self._loaded: dict[str, Any] | None = None

    # Ludwig models are rebuilt from the archives after unpickling, never pickled themselves.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_loaded"] = None
        state.pop("_workdir", None)
        return state

    @property
    def columns(self) -> list[str]:
        """The input columns, symbol first: what a request must hold, nothing more."""
        return [C.SYMBOL, *[c for c in self.input_columns if c != C.SYMBOL]]

    @property
    def symbols(self) -> list[str]:
        return sorted(k for k in self.archives if k != POOLED)

    def only(self, symbol: str) -> StockForecaster:
        """The same forecaster with one symbol's model (what a per-symbol task needs)."""
        return StockForecaster(
            archives={symbol: self.archives[symbol]},
            input_columns=self.input_columns,
            output_name=self.output_name,
            output_type=self.output_type,
            scope=self.scope,
            metadata=self.metadata,
            input_example=self.input_example,
        )

    def load_context(self, context: Any) -> None:
        self._models()

    def _models(self) -> dict[str, Any]:
        if self._loaded is None:
            from stock_mlops.models.ludwig_runtime import ludwig_model_class  # noqa: PLC0415

            LudwigModel = ludwig_model_class()  # noqa: N806 - ~10 s import, only here

            self._workdir = tempfile.TemporaryDirectory(prefix="stock_forecaster_")
            loaded = {}
            for key, blob in self.archives.items():
                target = Path(self._workdir.name) / key
                with zipfile.ZipFile(io.BytesIO(blob)) as archive:
                    archive.extractall(target)
                loaded[key] = LudwigModel.load(str(target), logging_level=logging.WARNING)
            self._loaded = loaded
        return self._loaded

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Predicts one value per row (see the class docstring)."""
        frame = pd.DataFrame(model_input)
        needed = self.columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise MlflowException.invalid_parameter_value(
                f"input lacks column(s) {missing}; the model needs {needed}"
            )
        empty = [c for c in needed if frame[c].isna().any()]
        if empty:
            raise MlflowException.invalid_parameter_value(f"missing values in column(s) {empty}")
        # JSON's Infinity (or 1e400) parses as a float: Ludwig would answer it with an infinite
        # prediction, which is not even valid JSON in the reply.
        infinite = [
            c
            for c in self.input_columns
            if pd.api.types.is_numeric_dtype(frame[c]) and not np.isfinite(frame[c]).all()
        ]
        if infinite:
            raise MlflowException.invalid_parameter_value(
                f"infinite values in column(s) {infinite}; every feature must be a finite number"
            )
        models = self._models()
        if self.scope == "pooled":
            routes = {POOLED: frame.index}
        else:
            unknown = sorted(set(frame[C.SYMBOL]) - set(models))
            if unknown:
                raise MlflowException.invalid_parameter_value(
                    f"no model for symbol(s) {unknown}; this model knows {self.symbols}"
                )
            routes = frame.groupby(C.SYMBOL, sort=False).groups
        result = pd.Series(index=frame.index, dtype=object)
        with tempfile.TemporaryDirectory(prefix="ludwig_predict_") as scratch:
            for key, index in routes.items():
                rows = frame.loc[index, self.input_columns]
                predicted, _ = models[key].predict(
                    rows, skip_save_predictions=True, output_directory=scratch
                )
                result.loc[index] = predicted[f"{self.output_name}_predictions"].to_numpy()
        if self.output_type == "number":
            result = result.astype(float)
        return pd.DataFrame({"prediction": result.to_numpy()}, index=frame.index)
