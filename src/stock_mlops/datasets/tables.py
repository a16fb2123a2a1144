"""Datasets that never leave a half-written file and never lose a logged row."""

from __future__ import annotations

import copy
import io
import logging
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError, parse_dataset_definition

from stock_mlops.core.vocabulary import Unchanged
from stock_mlops.datasets._storage import (
    atomic_write_bytes,
    filesystem,
    sweep_temporaries,
    temporary_sibling,
)
from stock_mlops.datasets.locks import StorageLock

logger = logging.getLogger(__name__)


class AtomicDataset(AbstractDataset[Any, Any]):
    """Wraps any file dataset so that a save writes a hidden sibling first, then renames it.

    A run that fails while writing therefore leaves the previous file intact. With
    ``mlflow_artifact`` set, the saved data is also logged to the active MLflow run under that
    name (from memory, so it works whatever the storage: local disk or S3).

    Example catalog entry::

        data_quality_report:
          type: stock_mlops.datasets.AtomicDataset
          dataset: pandas.CSVDataset
          filepath: ${_root}/08_reporting/data_quality_report.csv
          mlflow_artifact: reports/data_quality_report.csv
    """

    def __init__(
        self,
        *,
        dataset: str | dict[str, Any],
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        mlflow_artifact: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._mlflow_artifact = mlflow_artifact
        config = {"type": dataset} if isinstance(dataset, str) else copy.deepcopy(dataset)
        self._dataset_class, self._dataset_config = parse_dataset_definition(config)
        self._filepath = filepath
        self._credentials = credentials
        self._fs, self._protocol, self._path = filesystem(filepath, credentials, fs_args)
        self._target = self._make(filepath)
        self.metadata = metadata
        # kedro-viz previews a dataset that has a `preview` method and takes the preview's kind
        # from its return annotation: hand on the wrapped dataset's bound method as it is.
        if hasattr(self._target, "preview"):
            self.preview = self._target.preview

    def _make(self, filepath: str) -> AbstractDataset:
        config = {**self._dataset_config, "filepath": filepath}
        if self._credentials is not None:
            config["credentials"] = self._credentials
        return self._dataset_class(**config)

    def load(self) -> Any:
        return self._target.load()

    def save(self, data: Any) -> None:
        if isinstance(data, Unchanged):  # a day without retraining: keep the stored file
            logger.info("%s: unchanged", self._filepath)
            return
        # Hidden siblings of saves that were killed before their rename go first.
        sweep_temporaries(self._fs, self._path)
        tmp_path = temporary_sibling(self._path)
        tmp_url = tmp_path if self._protocol == "file" else f"{self._protocol}://{tmp_path}"
        try:
            self._make(tmp_url).save(data)
            self._fs.mv(tmp_path, self._path)
        finally:
            if self._fs.exists(tmp_path):
                self._fs.rm(tmp_path, recursive=True)
        self._fs.invalidate_cache(self._path)
        if self._mlflow_artifact:
            log_artifact_from_memory(data, self._mlflow_artifact)

    def _exists(self) -> bool:
        return self._target.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "dataset": self._dataset_class.__name__}


def _comparable_keys(
    existing: pd.DataFrame, incoming: pd.DataFrame
) -> tuple[pd.MultiIndex, pd.MultiIndex]:
    """Keys of both frames in one representation, so that a date read back from Parquet as a
    Timestamp equals the same date given as text."""
    left, right = existing.copy(), incoming.copy()
    for column in left.columns:
        if pd.api.types.is_datetime64_any_dtype(
            left[column]
        ) or pd.api.types.is_datetime64_any_dtype(right[column]):
            left[column] = pd.to_datetime(left[column]).dt.tz_localize(None)
            right[column] = pd.to_datetime(right[column]).dt.tz_localize(None)
    return (
        pd.MultiIndex.from_frame(left.astype(str)),
        pd.MultiIndex.from_frame(right.astype(str)),
    )


def log_artifact_from_memory(data: Any, artifact_file: str) -> None:
    """Logs a table, a document or a text to the active MLflow run (no-op without a run)."""
    import mlflow  # noqa: PLC0415

    if mlflow.active_run() is None:
        return
    if isinstance(data, pd.DataFrame):
        mlflow.log_text(data.to_csv(index=False), artifact_file)
    elif hasattr(data, "write_html") and artifact_file.endswith(".html"):
        # A plotly figure: MLflow's own default links plotly.js from a CDN, which does not
        # render offline; inline it as the saved file does.
        mlflow.log_figure(data, artifact_file, save_kwargs={"include_plotlyjs": True})
    elif isinstance(data, dict | list):
        mlflow.log_dict(data, artifact_file)
    else:
        mlflow.log_text(str(data), artifact_file)


class AppendOnlyParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A Parquet log that only grows: saving appends rows whose key is new, keeps the rest.

    Rows whose ``key_columns`` already exist in the log are neither replaced nor duplicated, so
    re-running the same day is a no-op. The file is rewritten atomically, and a writer holds the
    log's lock (``.<name>.lock`` beside it, see :mod:`stock_mlops.datasets.locks`) from reading
    the log to writing it, so two runs appending at once both keep their rows.

    Any other difference of columns is refused, except ``added_columns``: columns a newer version
    of the code added, which a log written before lacks (its older rows get them empty).

    Example catalog entry::

        predictions:
          type: stock_mlops.datasets.AppendOnlyParquetDataset
          filepath: ${_root}/07_model_output/predictions.parquet
          key_columns: [team, symbol, target_date, model_version]
          added_columns: []   # columns older logs may lack
    """

    def __init__(
        self,
        *,
        filepath: str,
        key_columns: list[str],
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        added_columns: list[str] | None = None,
        lock_wait_seconds: float = 600.0,
    ) -> None:
        if not key_columns:
            raise DatasetError("AppendOnlyParquetDataset needs at least one key column")
        self._filepath = filepath
        self._key = list(key_columns)
        self._added = list(added_columns or [])
        self._credentials, self._fs_args = credentials, fs_args
        self._fs, self._protocol, self._path = filesystem(filepath, credentials, fs_args)
        self._lock_wait = lock_wait_seconds
        self.metadata = metadata
        self.last_appended = 0

    def load(self) -> pd.DataFrame:
        if not self._fs.exists(self._path):
            raise DatasetError(f"the log '{self._filepath}' does not exist yet")
        return pd.read_parquet(io.BytesIO(self._fs.cat_file(self._path)))

    def save(self, data: pd.DataFrame) -> None:
        missing = [c for c in self._key if c not in data.columns]
        if missing:
            raise DatasetError(f"rows for '{self._filepath}' lack key columns {missing}")
        if data.duplicated(self._key).any():
            raise DatasetError(f"rows for '{self._filepath}' repeat a key {self._key}")
        lock = StorageLock.for_file(
            self._filepath,
            purpose=f"appending to {PurePosixPath(self._path).name}",
            wait_seconds=self._lock_wait,
            lease_seconds=60.0,
            credentials=self._credentials,
            fs_args=self._fs_args,
        )
        with lock:
            self._fs.invalidate_cache(self._path)
            existing = self.load() if self._fs.exists(self._path) else data.iloc[0:0]
            existing, data = self._aligned(existing, data)
            known, incoming = _comparable_keys(existing[self._key], data[self._key])
            fresh = data[~incoming.isin(known)]
            self.last_appended = len(fresh)
            logger.info(
                "%s: %d new rows appended, %d already logged",
                self._filepath,
                len(fresh),
                len(data) - len(fresh),
            )
            if (
                fresh.empty
                and self._fs.exists(self._path)
                and list(existing.columns) == list(self._stored_columns)
            ):
                return
            for column in existing.columns:
                # Keep the log's column types: a date arriving as text is stored as a date.
                if pd.api.types.is_datetime64_any_dtype(existing[column]) and len(fresh):
                    fresh = fresh.assign(**{column: pd.to_datetime(fresh[column])})
            combined = pd.concat([existing, fresh], ignore_index=True) if len(existing) else fresh
            buffer = io.BytesIO()
            combined.to_parquet(buffer, index=False)
            lock.check()
            atomic_write_bytes(self._fs, self._path, buffer.getvalue())

    def _aligned(
        self, existing: pd.DataFrame, data: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The log widened by the declared ``added_columns`` it predates; then the new rows must
        have exactly the log's columns, in its order."""
        self._stored_columns = list(existing.columns)
        if not len(existing.columns):
            return existing.reindex(columns=data.columns), data
        added = [c for c in self._added if c in data.columns and c not in existing.columns]
        if added:
            logger.warning(
                "%s: adding column(s) %s to the log (its older rows leave them empty)",
                self._filepath,
                added,
            )
            existing = existing.copy()
            for column in added:
                existing[column] = pd.Series(pd.NA, index=existing.index, dtype=data[column].dtype)
        if list(existing.columns) != list(data.columns):
            raise DatasetError(
                f"columns of new rows {list(data.columns)} differ from the log "
                f"'{self._filepath}' {list(existing.columns)}"
            )
        return existing, data

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "key_columns": self._key}
