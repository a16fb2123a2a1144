"""Model storage: a local versioned MLflow-pyfunc folder, the MLflow registry, the champion alias.

Loading returns a :class:`~stock_mlops.core.model_handle.ModelHandle` (or None when there is no
such model yet), so a node decides which model to load and only that one pays Ludwig's import.
mlflow is imported inside methods: building the catalog must stay cheap.
"""

from __future__ import annotations

import logging
import tempfile
from collections import OrderedDict
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
from stock_mlops.core.vocabulary import NAIVE_MODEL, Unchanged
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
        url = f"{self._protocol}://{path}"
        return ModelHandle(
            version=f"local:{label}",
            source="local",
            loader=lambda: _cached_load(url, lambda: self._read(path)),
        )

    def _read(self, path: str) -> Any:
        import mlflow.pyfunc  # noqa: PLC0415

        with tempfile.TemporaryDirectory(prefix="forecaster_") as scratch:
            self._fs.get(f"{path}/", f"{scratch}/model/", recursive=True)
            return mlflow.pyfunc.load_model(f"{scratch}/model")

    def save(self, data: Any) -> None:
        if isinstance(data, Unchanged):  # a day without retraining: no new version
            return
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

    def save(self, data: ModelRegistration | Unchanged) -> None:
        if isinstance(data, Unchanged):
            return
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


class ChampionModelDataset(AbstractDataset[AliasUpdate | Unchanged, ModelHandle | None]):
    """The registry alias that marks the model in service.

    ``load`` returns a handle to the aliased version. A registry without a champion is not an
    error: with ``seed_naive: true`` the naive last-close forecaster is registered and given the
    alias (every registry starts with it, so a learned model must beat it to serve); without it,
    ``load`` returns None. Any other registry failure (unreachable server, permissions) stops the
    run with the tracking URI named: it never passes for "no champion".

    ``save`` takes an :class:`AliasUpdate`: it moves the alias when ``promote`` is true and
    records the decision as tags on the candidate version either way.

    Example catalog entry::

        champion_model:
          type: stock_mlops.datasets.ChampionModelDataset
          model_name: stock_mlops_${globals:team}
          alias: champion
          seed_naive: true
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        seed_naive: bool = False,
        metadata: dict | None = None,
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self._seed_naive = seed_naive
        self.metadata = metadata

    def load(self) -> ModelHandle | None:
        from mlflow import MlflowClient  # noqa: PLC0415

        version = self._aliased_version(MlflowClient())
        if version is None and self._seed_naive:
            version = self._register_naive_champion()
        if version is None:
            return None
        return registry_handle(self._model_name, version)

    def _aliased_version(self, client: Any) -> Any:
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        try:
            return client.get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException as exc:
            if _is_missing(exc):
                return None
            raise DatasetError(_registry_error(self._model_name, exc)) from None
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise DatasetError(_registry_error(self._model_name, exc)) from None

    def _register_naive_champion(self) -> Any:
        import mlflow  # noqa: PLC0415

        from stock_mlops.models.naive import NaiveForecaster  # noqa: PLC0415

        naive = NaiveForecaster()
        signature, example = _signature_and_example(naive)
        # Its own (nested) run: the naive model is not what the surrounding run trained.
        with mlflow.start_run(run_name="naive champion", nested=mlflow.active_run() is not None):
            info = mlflow.pyfunc.log_model(
                name="naive_forecaster",
                python_model=naive,
                signature=signature,
                input_example=example,
                pip_requirements=_pip_requirements(),
                registered_model_name=self._model_name,
            )
        client = mlflow.MlflowClient()
        version = str(info.registered_model_version)
        client.set_model_version_tag(self._model_name, version, "kind", NAIVE_MODEL)
        client.set_registered_model_alias(self._model_name, self._alias, version)
        logger.warning(
            "%s had no %s: registered the naive last-close forecaster as version %s and gave it "
            "the alias (a learned model takes it only by beating it at the gate)",
            self._model_name,
            self._alias,
            version,
        )
        return client.get_model_version(self._model_name, version)

    def save(self, data: AliasUpdate | Unchanged) -> None:
        if isinstance(data, Unchanged):
            return
        from mlflow import MlflowClient  # noqa: PLC0415

        client = MlflowClient()
        version = data.candidate_version
        try:
            client.set_model_version_tag(
                self._model_name, version, "promotion", "promoted" if data.promote else "rejected"
            )
            client.set_model_version_tag(
                self._model_name, version, "promotion_reason", data.reason[:5000]
            )
            if data.promote:
                client.set_registered_model_alias(self._model_name, self._alias, version)
                logger.info("%s@%s -> version %s", self._model_name, self._alias, version)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(_registry_error(self._model_name, exc)) from None

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}


def registry_handle(model_name: str, version: Any) -> ModelHandle:
    """A handle to one registered version (pinned: a later alias move does not change it)."""
    uri = f"models:/{model_name}/{version.version}"
    return ModelHandle(
        version=f"{model_name}/{version.version}",
        source="registry",
        loader=lambda: _cached_load(uri),
        tags=dict(version.tags or {}),
        uri=uri,
    )


# Loaded models by URI: a season replays many days in one process, and loading a per-symbol
# Ludwig forecaster costs seconds each time. Registered versions and stored local versions never
# change once written, so a cached one is the same model.
_LOADED: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 8


def _cached_load(uri: str, loader: Any = None) -> Any:
    import mlflow  # noqa: PLC0415

    key = f"{mlflow.get_tracking_uri()}|{uri}"
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    model = loader() if loader is not None else mlflow.pyfunc.load_model(uri)
    _LOADED[key] = model
    while len(_LOADED) > _CACHE_SIZE:
        _LOADED.popitem(last=False)
    return model


def _is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the model or the alias does not exist (and nothing else)."""
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def _registry_error(model_name: str, exc: Exception) -> str:
    import mlflow  # noqa: PLC0415

    return (
        f"the MLflow registry at {mlflow.get_tracking_uri()} could not be read for "
        f"'{model_name}': {str(exc).splitlines()[0][:300]}. Check MLFLOW_TRACKING_URI and that "
        "the server is running"
    )
