"""Small MLflow datasets for the views that compare runs and teams.

kedro-mlflow logs metrics and artifacts; these two add what its datasets do not: a nested config
logged as one MLflow parameter per leaf (``ludwig.trainer.learning_rate``), and a table recorded
as a run input with ``mlflow.log_input`` (the runs table's "Dataset" column). mlflow is imported
inside methods: building the catalog must stay cheap.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

# MLflow accepts these characters in a param key; anything else becomes "_".
_UNSAFE_KEY = re.compile(r"[^\w\-. /]")
# Above this length MLflow truncates a param value (with a warning); such values become tags.
_MAX_PARAM_VALUE = 6000


def flatten_params(value: Any, prefix: str) -> dict[str, str]:
    """The leaves of a nested config as ``prefix.a.b`` keys with string values.

    A list of mappings that all carry a ``name`` (Ludwig's ``input_features`` and
    ``output_features``) is keyed by that name, so the same feature has the same key in every
    run whatever its position; other lists of mappings are keyed by position; lists of plain
    values stay one value (``[1, 5, 20]``).

    Args:
        value: The config (or any part of it).
        prefix: The key of ``value`` itself.

    Returns:
        Key -> value as text (None as ``None``, as kedro-mlflow writes it).
    """
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten_params(item, f"{prefix}.{key}"))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        named = all(isinstance(v.get("name"), str) for v in value)
        for index, item in enumerate(value):
            label = item["name"] if named else str(index)
            rest = {k: v for k, v in item.items() if not (named and k == "name")}
            if rest:
                out.update(flatten_params(rest, f"{prefix}.{label}"))
            else:
                out[f"{prefix}.{label}"] = ""
    else:
        out[prefix] = str(value)
    return {_UNSAFE_KEY.sub("_", k): v for k, v in out.items()}


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of every row and column (MLflow's own digest reads only the first 10,000 rows,
    so a change in the newest data of a sorted table would not change it).

    Args:
        frame: The table.

    Returns:
        The first 16 hex digits of a SHA-256 over pandas' row hashes and the column names.
    """
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


class MlflowParamsDataset(AbstractDataset[dict[str, Any], dict[str, str]]):
    """Logs a nested mapping (a model config) to the active run, one parameter per leaf.

    ``save`` flattens with :func:`flatten_params` under ``prefix``; values longer than MLflow's
    parameter limit go to a tag of the same name instead of being truncated. Nothing is logged
    without an active run. ``load`` returns the run's parameters under ``prefix``.

    Example catalog entry::

        ludwig_params:
          type: stock_mlops.datasets.MlflowParamsDataset
          prefix: ludwig
    """

    def __init__(self, *, prefix: str, metadata: dict[str, Any] | None = None) -> None:
        self._prefix = prefix
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        import mlflow  # noqa: PLC0415
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        if mlflow.active_run() is None:
            return
        flat = flatten_params(data, self._prefix)
        params = {k: v for k, v in flat.items() if len(v) <= _MAX_PARAM_VALUE}
        try:
            mlflow.log_params(params)
        except MlflowException as exc:
            # A re-used run (tracking.run.id) that trained another config: MLflow parameters
            # cannot change, and the run's training must not fail for a label.
            logger.warning("could not log %s.* parameters: %s", self._prefix, exc.message)
            return
        long_values = {k: v for k, v in flat.items() if k not in params}
        if long_values:
            mlflow.set_tags(long_values)
        logger.info("logged %d %s.* parameters", len(flat), self._prefix)

    def load(self) -> dict[str, str]:
        import mlflow  # noqa: PLC0415

        run = mlflow.active_run()
        if run is None:
            raise DatasetError(f"no active MLflow run to read {self._prefix}.* parameters from")
        params = mlflow.get_run(run.info.run_id).data.params
        return {k: v for k, v in params.items() if k.startswith(f"{self._prefix}.")}

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix}


class MlflowInputDataset(AbstractDataset[pd.DataFrame, None]):
    """Records a table as an input of the active run (``mlflow.log_input``).

    The digest covers every row (:func:`frame_digest`); the schema and row count come from
    MLflow's pandas dataset. Nothing is logged without an active run; the same table logged
    twice in a run stays one input.

    Args:
        name: The dataset's name in MLflow (the runs table shows ``name (digest)``).
        context: ``training``, ``validation``, ``test``...
        source: Where the table is stored (a path or URL), recorded as its source.
        targets: The target column, if the table holds it.
        tags: Extra input tags (for example which rows the run used).

    Example catalog entry::

        training_input:
          type: stock_mlops.datasets.MlflowInputDataset
          name: features
          context: training
          source: ${_root}/04_feature/features.parquet
    """

    def __init__(
        self,
        *,
        name: str,
        context: str = "training",
        source: str | None = None,
        targets: str | None = None,
        tags: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._context = context
        self._source = source
        self._targets = targets
        self._tags = dict(tags or {})
        self.metadata = metadata

    def save(self, data: pd.DataFrame) -> None:
        import mlflow  # noqa: PLC0415

        if mlflow.active_run() is None:
            return
        dataset = mlflow.data.from_pandas(
            data,
            source=_dataset_source(self._source),
            targets=self._targets if self._targets in data.columns else None,
            name=self._name,
            digest=frame_digest(data),
        )
        mlflow.log_input(dataset, context=self._context, tags=self._tags or None)
        logger.info(
            "recorded %s (%d rows, digest %s) as a %s input",
            self._name,
            len(data),
            dataset.digest,
            self._context,
        )

    def load(self) -> None:
        raise DatasetError(f"'{self._name}' is recorded in MLflow, not read back from it")

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "context": self._context, "source": self._source}


def _dataset_source(source: str | None) -> Any:
    """MLflow's source object for a storage location (None: MLflow records the code location).

    A local path is given as a ``file://`` URI. MLflow 3.17 registers its local artifact source
    twice and warns that a ``file://`` URI "can be interpreted in multiple ways" (both are the
    same class); that warning says nothing about this source and is not shown.
    """
    if source is None:
        return None
    import warnings  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from mlflow.data.dataset_source_registry import resolve_dataset_source  # noqa: PLC0415

    if "://" not in source:
        source = Path(source).resolve().as_uri()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*can be interpreted in multiple ways")
        return resolve_dataset_source(source)
