"""Reads what each team's runs persisted under its own storage root, for the competition.

``save`` takes ``{team: storage_root}`` (built by a node from ``competition.teams``); ``load``
returns, per team, the datasets named in ``read`` at their paths in ``layout`` (None for those
not yet produced), and, with ``mlflow_experiment``, how many configurations the team has tried
(its training runs in MLflow), which the deflated Sharpe ratio needs. ``layout`` is the one
mapping of dataset names to paths below a storage root (``globals.yml``), which the catalog's own
entries use too. Relative storage roots are relative to the working directory, the project root
under ``kedro``.
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

# A run is a training run when train_forecaster tagged it with the data it trained on.
TRAINING_RUN_TAG = "training_data_sha256"
# A run that tried several configurations (a hyperparameter search) logs how many.
TRIALS_METRIC = "trials"
# The backtest's Sharpe ratio as the backtest pipeline logs it (for the trials' variance).
SHARPE_METRIC = "backtest.sharpe"


class TeamOutputsDataset(AbstractDataset[dict[str, str], dict[str, dict[str, Any]]]):
    """Loads each team's outputs (Parquet, JSON and CSV) from its storage root.

    Example catalog entry::

        team_outputs:
          type: stock_mlops.datasets.TeamOutputsDataset
          filepath: ${_root}/08_reporting/competition_teams.json
          layout: ${globals:layout}
          read: [predictions, backtest_metrics]
          mlflow_experiment: stock_mlops_{team}

    Args:
        filepath: Where the request (team -> storage root) is saved.
        layout: Dataset name -> path below a storage root.
        read: The names to read (default: every name in the layout).
        mlflow_experiment: The MLflow experiment of a team (``{team}`` is replaced); None reads
            nothing from MLflow.
        tracking_uri: The MLflow tracking store (None: the one MLflow is configured with, as
            kedro-mlflow sets it for the run).
        credentials: fsspec credentials.
        fs_args: fsspec arguments.
        metadata: Free-form metadata.
    """

    def __init__(  # noqa: PLR0913 - the catalog entry's keys
        self,
        *,
        filepath: str,
        layout: dict[str, str],
        read: list[str] | None = None,
        mlflow_experiment: str | None = None,
        tracking_uri: str | None = None,
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
        self._experiment = mlflow_experiment
        self._tracking_uri = tracking_uri
        self._credentials = credentials
        self._fs_args = fs_args
        self.metadata = metadata

    def save(self, data: dict[str, str]) -> None:
        if not data:
            raise DatasetError(
                "the competition has no team: competition.teams is empty (add a conf/<team>/ "
                "folder whose globals.yml names a team, or pass --params "
                "competition.teams.red=data/red)"
            )
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
            if self._experiment is not None:
                outputs[team]["mlflow_trials"] = self._trials(self._experiment.format(team=team))
        return outputs

    def _read(self, location: str) -> Any:
        fs, _, path = filesystem(location, self._credentials, self._fs_args)
        if not fs.exists(path):
            return None
        content = fs.cat_file(path)
        try:
            if path.endswith(".parquet"):
                return pd.read_parquet(io.BytesIO(content))
            if path.endswith(".json"):
                return json.loads(content)
            if path.endswith(".csv"):
                return pd.read_csv(io.BytesIO(content))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same problem
            raise DatasetError(f"cannot read '{location}': {type(exc).__name__}: {exc}") from None
        raise DatasetError(f"cannot read '{location}': only .parquet, .json and .csv are supported")

    def _trials(self, experiment_name: str) -> dict[str, Any]:
        """How many configurations a team has tried, counted from its MLflow runs.

        Every training run counts 1, or the value of its ``trials`` metric when it logs one
        (a hyperparameter search logs how many configurations it tried); the backtest Sharpe
        ratios its runs logged give the variance across trials.
        """
        import mlflow  # noqa: PLC0415 - only the competition reads MLflow here
        from mlflow.tracking import MlflowClient  # noqa: PLC0415

        uri = self._tracking_uri or mlflow.get_tracking_uri()
        base = {"experiment": experiment_name, "tracking_uri": _safe_uri(uri)}
        try:
            _check_reachable(uri)
            client = MlflowClient(tracking_uri=uri)
            experiment = client.get_experiment_by_name(experiment_name)
            runs = [] if experiment is None else _all_runs(client, experiment.experiment_id)
        except Exception as exc:  # noqa: BLE001 - an unreachable store must not stop the board
            logger.warning("cannot count %s's trials in MLflow: %s", experiment_name, exc)
            return {**base, "trials": None, "runs": None, "sharpes": [], "note": str(exc)[:200]}
        training = [
            run
            for run in runs
            if TRAINING_RUN_TAG in run.data.tags or TRIALS_METRIC in run.data.metrics
        ]
        trials = sum(max(1, int(run.data.metrics.get(TRIALS_METRIC, 1))) for run in training)
        sharpes = [
            float(run.data.metrics[SHARPE_METRIC])
            for run in runs
            if SHARPE_METRIC in run.data.metrics
        ]
        note = (
            f"{trials} trials from {len(training)} training runs in '{experiment_name}'"
            if training
            else f"no training run found in '{experiment_name}'"
        )
        return {**base, "trials": trials, "runs": len(training), "sharpes": sharpes, "note": note}

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "layout": self._layout,
            "mlflow_experiment": self._experiment,
        }


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fails fast on a tracking server that does not answer: MLflow's own client retries an
    unreachable server for minutes before giving up."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests  # noqa: PLC0415

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.RequestException as exc:
        raise ConnectionError(
            f"MLflow tracking server {_safe_uri(uri)} does not answer ({type(exc).__name__})"
        ) from None


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _safe_uri(uri: str) -> str:
    """The tracking URI without any user:password part."""
    scheme, sep, rest = uri.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else uri
