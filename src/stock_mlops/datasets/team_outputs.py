"""Reads what each team's runs persisted under its own storage root, for the competition.

``save`` takes ``{team: storage_root}`` (built by a node from ``competition.teams``); ``load``
returns, per team, the datasets named in ``read`` at their paths in ``layout`` (None for those
not yet produced). ``layout`` is the one mapping of dataset names to paths below a storage root
(``globals.yml``), which the catalog's own entries use too.
Relative storage roots are relative to the working directory, the project root under ``kedro``.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.datasets._storage import atomic_write_bytes, filesystem

logger = logging.getLogger(__name__)


class TeamOutputsDataset(AbstractDataset[dict[str, str], dict[str, dict[str, Any]]]):
    """Loads each team's outputs (Parquet tables and JSON documents) from its storage root.

    Example catalog entry::

        team_outputs:
          type: stock_mlops.datasets.TeamOutputsDataset
          filepath: ${_root}/08_reporting/competition_teams.json
          layout: ${globals:layout}
          read: [predictions, backtest_metrics]
    """

    def __init__(
        self,
        *,
        filepath: str,
        layout: dict[str, str],
        read: list[str] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath
        self._fs, _, self._path = filesystem(filepath, credentials, fs_args)
        names = list(read) if read is not None else list(layout)
        unknown = sorted(set(names) - set(layout))
        if unknown:
            raise DatasetError(f"team_outputs: {unknown} have no path in the layout")
        self._layout = {name: layout[name] for name in names}
        self._credentials = credentials
        self._fs_args = fs_args
        self.metadata = metadata

    def save(self, data: dict[str, str]) -> None:
        if len(data) < 2:
            raise DatasetError(f"a competition needs at least two teams, got {sorted(data)}")
        document = {"teams": dict(data)}
        atomic_write_bytes(self._fs, self._path, json.dumps(document, indent=1).encode())

    def load(self) -> dict[str, dict[str, Any]]:
        if not self._fs.exists(self._path):
            raise DatasetError(f"'{self._filepath}' does not exist; run the competition pipeline")
        request = json.loads(self._fs.cat_file(self._path))
        outputs = {}
        for team, root in sorted(request["teams"].items()):
            outputs[team] = {"root": root}
            for name, relative in self._layout.items():
                outputs[team][name] = self._read(f"{str(root).rstrip('/')}/{relative}")
            found = [n for n in self._layout if outputs[team][n] is not None]
            logger.info("team %s (%s): found %s", team, root, found or "nothing")
        return outputs

    def _read(self, location: str) -> Any:
        fs, _, path = filesystem(location, self._credentials, self._fs_args)
        if not fs.exists(path):
            return None
        content = fs.cat_file(path)
        if path.endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(content))
        if path.endswith(".json"):
            return json.loads(content)
        raise DatasetError(f"cannot read '{location}': only .parquet and .json are supported")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "layout": self._layout}
