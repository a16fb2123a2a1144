"""Model storage: a local versioned MLflow-pyfunc folder, the MLflow registry, the champion alias.

Loading returns a :class:`~stock_mlops.core.model_handle.ModelHandle` (or None when there is no
such model yet), so a node decides which model to load and only that one pays Ludwig's import.
mlflow is imported inside methods: building the catalog must stay cheap.
"""

from __future__ import annotations

import logging
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import (
    AbstractDataset,
    AbstractVersionedDataset,
    DatasetError,
    Version,
    VersionNotFoundError,
)

from stock_mlops.core.model_handle import AliasUpdate, ModelHandle, ModelRegistration
from stock_mlops.datasets._storage import filesystem

logger = logging.getLogger(__name__)

# Recorded with each logged model so that `mlflow models serve` without --env-manager local can
# rebuild the environment; computing them with MLflow's inference takes ~25 s per model.
_REQUIREMENTS = ("ludwig", "mlflow", "pandas", "torch", "torchvision", "torchaudio")


def _pip_requirements() -> list[str]:
    return [f"{name}=={importlib_metadata.version(name)}" for name in _REQUIREMENTS]


def _signature_and_example(model: Any) -> tuple[Any, pd.DataFrame]:
    from mlflow.models import infer_signature  # noqa: PLC0415

    example = pd.DataFrame(model.input_example)
    return infer_signature(example, model.predict(None, example)), example


class PyfuncModelDataset(AbstractVersionedDataset[Any, ModelHandle | None]):
    """A forecaster saved as an MLflow pyfunc model folder, versioned, on any fsspec storage.

    ``load`` returns a handle to the newest version (or the pinned one), or None if none exists.

    Example catalog entry::

        forecaster:
          type: stock_mlops.datasets.PyfuncModelDataset
          filepath: ${_root}/06_models/forecaster
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._fs, self._protocol, path = filesystem(filepath, credentials, fs_args)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> ModelHandle | None:
        try:
            path = str(self._get_load_path())
        except VersionNotFoundError:
            return None
        if not self._fs.exists(f"{path}/MLmodel"):
            return None
        label = PurePosixPath(path).parent.name if self._version else "unversioned"
        return ModelHandle(
            version=f"local:{label}", source="local", loader=lambda: self._read(path)
        )

    def _read(self, path: str) -> Any:
        import mlflow.pyfunc  # noqa: PLC0415

        with tempfile.TemporaryDirectory(prefix="forecaster_") as scratch:
            self._fs.get(f"{path}/", f"{scratch}/model/", recursive=True)
            return mlflow.pyfunc.load_model(f"{scratch}/model")

    def save(self, data: Any) -> None:
        import mlflow.pyfunc  # noqa: PLC0415

        path = str(self._get_save_path())
        signature, example = _signature_and_example(data)
        with tempfile.TemporaryDirectory(prefix="forecaster_") as scratch:
            local = Path(scratch) / "model"
            mlflow.pyfunc.save_model(
                path=str(local),
                python_model=data,
                signature=signature,
                input_example=example,
                pip_requirements=_pip_requirements(),
            )
            self._fs.makedirs(path, exist_ok=True)
            self._fs.put(f"{local}/", f"{path}/", recursive=True)
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(str(self._filepath))
        self._clear_version_cache()

    def _exists(self) -> bool:
        return self.load() is not None

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


class RegisteredModelDataset(AbstractDataset[ModelRegistration, dict[str, Any]]):
    """Logs a stored forecaster to the active MLflow run and registers it as a new version.

    ``save`` takes a :class:`ModelRegistration`: the model the run stored locally (so the
    registered version is exactly the stored one) and the tags of the new version.

    ``load`` returns ``{name, version, run_id}`` of the newest registered version.

    Example catalog entry::

        registered_forecaster:
          type: stock_mlops.datasets.RegisteredModelDataset
          model_name: stock_mlops_${globals:team}
    """

    def __init__(
        self, *, model_name: str, artifact_path: str = "forecaster", metadata: dict | None = None
    ) -> None:
        self._model_name = model_name
        self._artifact_path = artifact_path
        self.metadata = metadata

    def save(self, data: ModelRegistration) -> None:
        import mlflow  # noqa: PLC0415

        if mlflow.active_run() is None:
            raise DatasetError(
                f"registering '{self._model_name}' needs an active MLflow run; run the pipeline "
                "with kedro-mlflow tracking enabled"
            )
        python_model = data.model.load().unwrap_python_model()
        signature, example = _signature_and_example(python_model)
        info = mlflow.pyfunc.log_model(
            name=self._artifact_path,
            python_model=python_model,
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            registered_model_name=self._model_name,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in data.tags.items():
            client.set_model_version_tag(self._model_name, version, key, str(value)[:5000])
        logger.info("registered %s version %s", self._model_name, version)

    def load(self) -> dict[str, Any]:
        from mlflow import MlflowClient  # noqa: PLC0415

        versions = MlflowClient().search_model_versions(f"name='{self._model_name}'")
        if not versions:
            raise DatasetError(f"no version of '{self._model_name}' is registered")
        newest = max(versions, key=lambda v: int(v.version))
        return {"name": self._model_name, "version": int(newest.version), "run_id": newest.run_id}

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name}


class ChampionModelDataset(AbstractDataset[AliasUpdate, ModelHandle | None]):
    """The registry alias that marks the model in service.

    ``load`` returns a handle to the aliased version, or None when no version holds the alias.
    ``save`` takes an :class:`AliasUpdate`: it moves the alias when ``promote`` is true and
    records the decision as tags on the candidate version either way.

    Example catalog entry::

        champion_model:
          type: stock_mlops.datasets.ChampionModelDataset
          model_name: stock_mlops_${globals:team}
          alias: champion
    """

    def __init__(
        self, *, model_name: str, alias: str = "champion", metadata: dict | None = None
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def load(self) -> ModelHandle | None:
        from mlflow import MlflowClient  # noqa: PLC0415
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        try:
            version = MlflowClient().get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException:
            return None
        uri = f"models:/{self._model_name}@{self._alias}"

        def _load() -> Any:
            import mlflow.pyfunc  # noqa: PLC0415

            return mlflow.pyfunc.load_model(uri)

        return ModelHandle(
            version=f"{self._model_name}/{version.version}",
            source="registry",
            loader=_load,
            uri=f"models:/{self._model_name}/{version.version}",
        )

    def save(self, data: AliasUpdate) -> None:
        from mlflow import MlflowClient  # noqa: PLC0415

        client = MlflowClient()
        version = data.candidate_version
        client.set_model_version_tag(
            self._model_name, version, "promotion", "promoted" if data.promote else "rejected"
        )
        client.set_model_version_tag(
            self._model_name, version, "promotion_reason", data.reason[:5000]
        )
        if data.promote:
            client.set_registered_model_alias(self._model_name, self._alias, version)
            logger.info("%s@%s -> version %s", self._model_name, self._alias, version)

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
