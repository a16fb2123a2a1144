"""Monitoring datasets: the team's evidently workspace, and documents that may not exist yet."""

from __future__ import annotations

import json
import logging
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.core.monitoring import MonitoringRun
from stock_mlops.datasets._storage import atomic_write_bytes, filesystem
from stock_mlops.datasets.tables import AtomicDataset

logger = logging.getLogger(__name__)


class EvidentlyWorkspaceDataset(AbstractDataset[MonitoringRun, pd.DataFrame]):
    """An evidently workspace (the folder ``evidently ui --workspace`` serves), one project per
    team, one set of snapshots per run date.

    Saving a :class:`~stock_mlops.core.monitoring.MonitoringRun` adds its snapshots to the
    project named after the team (created on first use), removes the snapshots that project held
    for the same run date (so re-running a date replaces its snapshots, it never adds a second
    set), and saves the project's dashboard. Which snapshot belongs to which run date is kept in
    ``stock_mlops_runs.json`` at the workspace's root (evidently ignores files that are not
    project folders), so a save reads no old snapshot; a snapshot the index does not know (added
    by hand, or by a run that stopped between two writes) is read once and indexed by its
    ``run_date`` metadata.

    Any fsspec location works (``s3://bucket/prefix`` through s3fs, with the endpoint from
    ``AWS_ENDPOINT_URL_S3``, as every other dataset of the project).

    The dataset writes through the workspace's file storage (evidently's
    ``evidently.ui.storage.local.base.LocalState``, the object every project, snapshot and
    dashboard method of ``evidently.ui.workspace.Workspace`` delegates to), not through
    ``Workspace`` itself: constructing a ``Workspace`` also builds its dataset manager, which reads
    and parses every stored snapshot (3.6 s at 122 snapshots here, growing by two a day), while a
    save needs none of them. The files are the ones ``Workspace`` writes; ``evidently ui`` serves
    them (tests/test_monitoring_ui.py).

    Loading returns the index: one row per stored snapshot (``project``, ``project_id``,
    ``run_date``, ``kind``, ``snapshot_id``).

    Example catalog entry::

        monitoring_workspace:
          type: stock_mlops.datasets.EvidentlyWorkspaceDataset
          path: ${_root}/08_reporting/evidently_workspace
    """

    INDEX_FILE = "stock_mlops_runs.json"

    def __init__(
        self,
        *,
        path: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._url = str(path).rstrip("/")
        self._fs, self._protocol, self._root = filesystem(self._url, credentials, fs_args)
        self._index_path = str(PurePosixPath(self._root) / self.INDEX_FILE)
        self.metadata = metadata

    def _storage(self) -> Any:
        # Seconds to import: only when a run saves or reads the workspace.
        from evidently.ui.storage.local.base import LocalState  # noqa: PLC0415

        return LocalState(self._url)

    def _read_index(self) -> dict[str, dict[str, dict[str, str]]]:
        if not self._fs.exists(self._index_path):
            return {}
        try:
            return json.loads(self._fs.cat_file(self._index_path))
        except ValueError:
            # A damaged index is rebuilt from the snapshots themselves (see save).
            logger.warning("%s is not valid JSON; rebuilding it", self._index_path)
            return {}

    def load(self) -> pd.DataFrame:
        if not self._exists():
            raise DatasetError(f"the evidently workspace '{self._url}' does not exist yet")
        storage = self._storage()
        index = self._read_index()
        rows = []
        for project_id in storage.list_projects():
            project = storage.read_project(project_id)
            known = index.get(str(project_id), {})
            for snapshot_id in storage.list_snapshots(project_id):
                entry = known.get(str(snapshot_id)) or _entry(
                    storage.read_snapshot(project_id, snapshot_id)
                )
                rows.append(
                    {
                        "project": project.name,
                        "project_id": str(project_id),
                        "run_date": entry["run_date"],
                        "kind": entry["kind"],
                        "snapshot_id": str(snapshot_id),
                    }
                )
        columns = ["project", "project_id", "run_date", "kind", "snapshot_id"]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["project", "run_date", "kind"]).reset_index(drop=True)

    def save(self, data: MonitoringRun) -> None:
        from evidently.legacy.core import new_id  # noqa: PLC0415
        from evidently.sdk.models import ProjectModel  # noqa: PLC0415

        run_date = data.run_date.isoformat()
        storage = self._storage()
        storage.location.makedirs("")
        project = next(
            (
                found
                for found in map(storage.read_project, storage.list_projects())
                if found.name == data.project
            ),
            None,
        ) or storage.write_project(ProjectModel(name=data.project, description=data.description))
        project_id = str(project.id)
        index = self._read_index()
        stored = {str(s) for s in storage.list_snapshots(project_id)}
        known = {sid: e for sid, e in index.get(project_id, {}).items() if sid in stored}
        for snapshot_id in sorted(stored - known.keys()):
            known[snapshot_id] = _entry(storage.read_snapshot(project_id, snapshot_id))
        replaced = [sid for sid, entry in known.items() if entry["run_date"] == run_date]
        # Add first, delete after: a run that stops halfway leaves two sets for the date,
        # which the next save of that date cleans up, never none.
        for kind, snapshot in data.snapshots.items():
            snapshot.set_name(f"{kind} {run_date}")  # as Workspace.add_run(name=...) does
            snapshot_id = new_id()
            storage.write_snapshot(project_id, snapshot_id, snapshot.to_snapshot_model())
            known[str(snapshot_id)] = {"run_date": run_date, "kind": kind}
        for snapshot_id in replaced:
            storage.delete_snapshot(project_id, snapshot_id)
            known.pop(snapshot_id)
        index[project_id] = known
        atomic_write_bytes(
            self._fs, self._index_path, json.dumps(index, indent=1, sort_keys=True).encode()
        )
        if data.dashboard is not None:
            # The whole dashboard at once: saving replaces it, so re-runs never duplicate panels.
            storage.write_dashboard(project_id, data.dashboard)
        logger.info(
            "evidently workspace %s: project %s, run date %s: %d snapshot(s) added, %d replaced",
            self._url,
            data.project,
            run_date,
            len(data.snapshots),
            len(replaced),
        )

    def _exists(self) -> bool:
        return self._fs.exists(self._root)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._url}


def _entry(snapshot: Any) -> dict[str, str]:
    """The index entry of a stored snapshot (an evidently ``SnapshotModel``)."""
    metadata = dict(snapshot.metadata or {})
    run_date = metadata.get("run_date") or snapshot.timestamp.date().isoformat()
    return {"run_date": str(run_date), "kind": str(metadata.get("kind", ""))}


class OptionalDataset(AbstractDataset[Any, Any]):
    """A document another pipeline writes later, or may not have written yet: loads ``None``
    while the file does not exist (the reader decides what that means), saves atomically.

    Example catalog entry::

        deployed_model_card:
          type: stock_mlops.datasets.OptionalDataset
          dataset: json.JSONDataset
          filepath: ${_root}/06_models/deployed_model_card.json
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
        self._filepath = filepath
        self._target = AtomicDataset(
            dataset=dataset,
            filepath=filepath,
            credentials=credentials,
            fs_args=fs_args,
            mlflow_artifact=mlflow_artifact,
        )
        self.metadata = metadata

    def load(self) -> Any:
        if not self._target.exists():
            logger.info("%s does not exist yet: loading None", self._filepath)
            return None
        return self._target.load()

    def save(self, data: Any) -> None:
        self._target.save(data)

    def _exists(self) -> bool:
        return self._target.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
