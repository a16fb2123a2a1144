"""The registered model for prediction from prices (see ``models/price_forecaster.py``)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.core import columns as C
from stock_mlops.core.model_handle import ModelHandle, PriceModelRequest
from stock_mlops.datasets.models import _pip_requirements

logger = logging.getLogger(__name__)

# What the bundled feature code imports beyond the forecaster's own requirements.
_FEATURE_REQUIREMENTS = ("kedro", "pydantic", "TA-Lib", "exchange_calendars", "pyarrow")
# Bundled with the model: the project's code as of the build, without data or caches.
_NOT_BUNDLED = ("__pycache__", "*.pyc", "snapshot")


class PriceModelDataset(AbstractDataset[PriceModelRequest, ModelHandle | None]):
    """Builds, logs and registers the model that predicts from recent bars.

    ``save`` takes a :class:`PriceModelRequest`: the wrapped forecaster's version is copied into
    the new model as an artifact, the project's code is bundled (``code_paths``), a first
    prediction on the example bars must succeed (so a model that cannot answer is never
    registered), and the new version gets the alias (``champion``) and a ``source_model`` tag.
    ``load`` returns a handle to the version holding the alias, or None.

    Example catalog entry::

        price_forecaster:
          type: stock_mlops.datasets.PriceModelDataset
          model_name: stock_mlops_${globals:team}_prices
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        artifact_path: str = "price_forecaster",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self._artifact_path = artifact_path
        self.metadata = metadata

    def save(self, data: PriceModelRequest) -> None:
        import mlflow  # noqa: PLC0415
        from mlflow.models import infer_signature  # noqa: PLC0415

        from stock_mlops.models.price_forecaster import (  # noqa: PLC0415
            PriceForecaster,
            example_bars,
        )

        if mlflow.active_run() is None:
            raise DatasetError(
                f"registering '{self._model_name}' needs an active MLflow run; run the pipeline "
                "with kedro-mlflow tracking enabled"
            )
        model = PriceForecaster(
            feature_engineering=data.feature_engineering,
            min_bars=data.min_bars,
            model_version=data.source.version,
        )
        model.attach(data.source.load())
        example = example_bars(data.example_bars, _example_symbol(model, data), data.min_bars)
        answer = model.predict(None, example)
        with warnings.catch_warnings():
            # The one integer column is the answer's count of bars received, never missing.
            warnings.filterwarnings("ignore", message=r"(?s).*integer column")
            signature = infer_signature(example, answer, params={"min_bars": data.min_bars})
        with tempfile.TemporaryDirectory(prefix="price_model_code_") as scratch:
            code = _bundle_code(Path(scratch))
            info = mlflow.pyfunc.log_model(
                name=self._artifact_path,
                python_model=model,
                artifacts={"forecaster": data.source.uri},
                code_paths=[str(code)],
                signature=signature,
                input_example=example,
                pip_requirements=[*_pip_requirements(), *_feature_requirements()],
                registered_model_name=self._model_name,
            )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(self._model_name, version, "source_model", data.source.uri)
        client.set_model_version_tag(self._model_name, version, "min_bars", str(data.min_bars))
        client.set_registered_model_alias(self._model_name, self._alias, version)
        logger.info(
            "registered %s version %s (%s) wrapping %s; serve models:/%s@%s",
            self._model_name,
            version,
            self._alias,
            data.source.uri,
            self._model_name,
            self._alias,
        )

    def load(self) -> ModelHandle | None:
        from mlflow import MlflowClient  # noqa: PLC0415
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        try:
            version = MlflowClient().get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException:
            return None
        uri = f"models:/{self._model_name}/{version.version}"

        def _load() -> Any:
            import mlflow.pyfunc  # noqa: PLC0415

            return mlflow.pyfunc.load_model(uri)

        return ModelHandle(
            version=f"{self._model_name}/{version.version}",
            source="registry",
            loader=_load,
            uri=uri,
        )

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}


def _example_symbol(model: Any, data: PriceModelRequest) -> str:
    """A symbol the wrapped forecaster knows (every symbol, for a pooled one)."""
    available = sorted(set(data.example_bars[C.SYMBOL]))
    known = getattr(model.forecaster, "symbols", None) or available
    usable = [s for s in available if s in set(known)]
    if not usable:
        raise DatasetError(
            f"the forecaster knows {sorted(known)}, none of which is in prices ({available})"
        )
    return usable[0]


def _bundle_code(folder: Path) -> Path:
    """A copy of the ``stock_mlops`` package being run, without the bundled price data."""
    import stock_mlops  # noqa: PLC0415

    source = Path(stock_mlops.__file__).parent
    target = folder / "stock_mlops"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_NOT_BUNDLED))
    return target


def _feature_requirements() -> list[str]:
    return [f"{name}=={importlib_metadata.version(name)}" for name in _FEATURE_REQUIREMENTS]
