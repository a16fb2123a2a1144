"""Facts about the current run that nodes may not fetch themselves (clock, identity).

The code version is on the MLflow run as MLflow's standard ``mlflow.source.git.*`` tags
(:class:`stock_mlops.hooks.MlflowRunViewsHook`), so it is not repeated here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError


class RunInfoDataset(AbstractDataset[None, dict[str, Any]]):
    """Loads ``{run_id, started_at}`` once per run.

    ``run_id`` is the active MLflow run (kedro-mlflow starts one per ``kedro run``), else a fresh
    UUID; ``started_at`` is UTC. Nodes take this as an input instead of reading the clock.
    """

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata
        self._cached: dict[str, Any] | None = None

    def load(self) -> dict[str, Any]:
        if self._cached is None:
            self._cached = {
                "run_id": _mlflow_run_id() or uuid.uuid4().hex,
                "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        return dict(self._cached)

    def save(self, data: None) -> None:
        raise DatasetError("run_info is read-only")

    def _release(self) -> None:
        # The next load describes a new run (a process that runs several: Dagster in-process).
        self._cached = None

    def _describe(self) -> dict[str, Any]:
        return {}


def _mlflow_run_id() -> str | None:
    import mlflow  # noqa: PLC0415

    run = mlflow.active_run()
    return run.info.run_id if run else None


class MlflowTagsDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Sets tags on the active MLflow run (kedro-mlflow has datasets for metrics, not tags)."""

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        import mlflow  # noqa: PLC0415

        if mlflow.active_run() is None:
            return
        mlflow.set_tags({key: str(value)[:5000] for key, value in data.items()})

    def load(self) -> dict[str, Any]:
        import mlflow  # noqa: PLC0415

        run = mlflow.active_run()
        if run is None:
            raise DatasetError("no active MLflow run to read tags from")
        return dict(mlflow.get_run(run.info.run_id).data.tags)

    def _describe(self) -> dict[str, Any]:
        return {}


class MlflowTrialRunsDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A hyperparameter search's trials as MLflow child runs of the active (training) run.

    Each trial becomes a nested run named ``trial <k> · <model>`` with the values it tried as
    parameters, its ``validation_score`` as a metric and the tags ``model``, ``fold``, ``trial``
    and ``best``; the whole table also goes to the parent run as ``hyperopt/trials.csv``. An
    empty table (no search) logs nothing. Loading gives the active run's trials back.
    """

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata

    def save(self, data: pd.DataFrame) -> None:
        import json  # noqa: PLC0415

        import mlflow  # noqa: PLC0415

        parent = mlflow.active_run()
        if parent is None or data.empty:
            return
        for row in data.itertuples(index=False):
            name = f"trial {row.trial} · {row.model}" + ("" if not row.fold else f" · {row.fold}")
            tags = {"model": row.model, "fold": row.fold, "trial": row.trial, "best": row.best}
            with mlflow.start_run(run_name=name, nested=True, tags=_strings(tags)):
                mlflow.log_params(json.loads(row.parameters))
                mlflow.log_metric("validation_score", float(row.validation_score))
                mlflow.log_metric("epochs", float(row.epochs))
        mlflow.log_text(data.to_csv(index=False), "hyperopt/trials.csv")

    def load(self) -> pd.DataFrame:
        import mlflow  # noqa: PLC0415

        run = mlflow.active_run()
        if run is None:
            raise DatasetError("no active MLflow run to read hyperopt trials from")
        children = mlflow.search_runs(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
        )
        return children

    def _describe(self) -> dict[str, Any]:
        return {}


def _strings(values: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in values.items()}
