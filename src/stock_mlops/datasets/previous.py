"""What a run reads of the state earlier runs left: the same file a later node of this run
writes, under another catalog name.

The daily loop's retrain policy reads the training history and the last monitoring alert before
training; the same run appends to that history and writes a new alert afterwards. Reading and
writing one catalog entry in one pipeline would be a cycle, so the reading side is this
read-only dataset. On the first run the file does not exist yet: that is a state (no history),
not an error.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.datasets._storage import filesystem


class EarlierRunDataset(AbstractDataset[None, Any]):
    """Reads a Parquet table or a JSON document written by an earlier run; never writes.

    ``load`` returns the stored content, or (when nothing is stored yet) an empty table with
    ``columns`` for Parquet and None for JSON.

    Example catalog entry::

        last_training_runs:
          type: stock_mlops.datasets.EarlierRunDataset
          filepath: ${_root}/06_models/training_history.parquet
          file_format: parquet
    """

    def __init__(
        self,
        *,
        filepath: str,
        file_format: Literal["parquet", "json"],
        columns: list[str] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if file_format not in ("parquet", "json"):
            raise DatasetError(f"file_format must be 'parquet' or 'json', not '{file_format}'")
        self._filepath = filepath
        self._format = file_format
        self._columns = list(columns or [])
        self._fs, _, self._path = filesystem(filepath, credentials, fs_args)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._fs.exists(self._path):
            return pd.DataFrame(columns=self._columns) if self._format == "parquet" else None
        content = self._fs.cat_file(self._path)
        if self._format == "parquet":
            return pd.read_parquet(io.BytesIO(content))
        try:
            return json.loads(content)
        except ValueError as exc:
            raise DatasetError(f"'{self._filepath}' is not valid JSON: {exc}") from None

    def save(self, data: None) -> None:
        raise DatasetError(f"'{self._filepath}' is read-only here: a later node writes it")

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "file_format": self._format}
