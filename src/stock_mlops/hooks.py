"""Project hooks."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Node, Pipeline

from stock_mlops.core.params import validate_parameters
from stock_mlops.preflight import LUDWIG_CONFIG, check_catalog_config, dataset_filepath

logger = logging.getLogger(__name__)


class ParameterValidationHook:
    """Validates every parameter (base + environment + ``--params``) before anything runs, so a
    typo such as ``--params trading.treshold=0.01`` stops the run at once with the key named.

    Kedro validates the sections nodes ask for when the catalog is built; this check covers the
    whole tree (unknown top-level keys included) and runs first, on the raw configuration.
    """

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        validate_parameters(context.config_loader["parameters"])


class LocalTrackingStoreHook:
    """Creates the project's local MLflow folder when a run starts and the local SQLite store is
    in use (no ``MLFLOW_TRACKING_URI``): SQLite does not create missing folders.

    ``tryfirst``: it must run before kedro-mlflow's own ``after_context_created`` opens the store.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return
        from stock_mlops.settings import LOCAL_ARTIFACTS, LOCAL_TRACKING_DB  # noqa: PLC0415

        root = Path(context.project_path)
        (root / LOCAL_TRACKING_DB).parent.mkdir(parents=True, exist_ok=True)
        (root / LOCAL_ARTIFACTS).mkdir(parents=True, exist_ok=True)


class StorageLockHook:
    """Holds the storage root's run lock for the whole run, so that two runs on one team's
    storage (a schedule firing while a person runs by hand) never interleave.

    Before the first node: an ``s3://`` root's bucket must exist (unless
    ``storage.create_bucket``), then :class:`~stock_mlops.datasets.locks.StorageLock` on
    ``<storage_root>/_locks/run.lock`` is taken, waiting up to ``storage.lock.wait_seconds`` for
    another run; the lock is given back when the run ends, successfully or not. Re-entrant, so a
    caller that already holds it (a season replay) runs its daily runs inside one lock.
    """

    def __init__(self) -> None:
        self._context: KedroContext | None = None
        self._held: list[Any] = []

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        from stock_mlops.core.params import validate_parameters  # noqa: PLC0415
        from stock_mlops.datasets._storage import check_bucket  # noqa: PLC0415
        from stock_mlops.datasets.locks import StorageLock  # noqa: PLC0415

        if self._context is None:
            return
        params = validate_parameters(self._context.params)
        root = params.storage_root
        check_bucket(root, create=params.storage.create_bucket)
        names = run_params.get("pipeline_names") or ["__default__"]
        purpose = f"kedro run --pipelines {','.join(names)} --env {run_params.get('env') or 'base'}"
        if params.run_date:
            purpose += f" run_date={params.run_date}"
        lock = StorageLock.for_root(
            root,
            purpose=purpose,
            lease_seconds=params.storage.lock.lease_seconds,
            wait_seconds=params.storage.lock.wait_seconds,
        )
        lock.acquire()
        self._held.append(lock)
        logger.info("holding the run lock %s", lock.url)

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        # The run's error is what the user must see, not a lock the failing storage cannot
        # release as well.
        if self._held:
            self._held.pop().release_after_error()

    def _release(self) -> None:
        if self._held:
            self._held.pop().release()


class DaskClusterHook:
    """One Dask cluster for a whole run when ``training.executor`` is ``dask``.

    Several training nodes hand work to the executor (the deployable models, the walk-forward
    folds); without this hook each would start its own LocalCluster, whose workers import torch
    and Ludwig again. Before a pipeline with training nodes the hook declares the run's cluster,
    which the first node that needs it starts (a daily run that does not retrain starts none);
    it closes when the run ends, successfully or not. Outside such a run (a node called by
    itself) each node opens and closes its own.
    """

    def __init__(self) -> None:
        self._context: KedroContext | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline) -> None:
        if self._context is None:
            return
        raw = self._context.config_loader["parameters"].get("training")
        if not raw or raw.get("executor") != "dask":
            return
        if not any(node.namespace == "training" for node in pipeline.nodes):
            return
        from stock_mlops.core.params import TrainingParams  # noqa: PLC0415
        from stock_mlops.pipelines.training.executors import open_run_cluster  # noqa: PLC0415

        open_run_cluster(TrainingParams.parse(raw, "training").dask)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._close()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close()

    def _close(self) -> None:
        from stock_mlops.pipelines.training.executors import close_run_cluster  # noqa: PLC0415

        close_run_cluster()


class StopAfterFailureHook:
    """Runs no node once the pipeline has failed.

    Kedro's runner stops at the first failure by itself; Dagster (kedro-dagster) still runs the
    steps that do not depend on the failed one, and each would reopen the MLflow run that
    kedro-mlflow had just closed as FAILED (leaving it RUNNING). ``tryfirst``: the refusal comes
    before any other hook acts on the node.
    """

    def __init__(self) -> None:
        self._failure: Exception | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._failure = None

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        self._failure = error

    @hook_impl(tryfirst=True)
    def before_node_run(self, node: Any) -> None:
        if self._failure is not None:
            raise RuntimeError(
                f"not running {node.name}: the pipeline already failed "
                f"({type(self._failure).__name__}: {str(self._failure).splitlines()[0][:200]})"
            )


class FailureReportHook:
    """Saves the report a failing node carries, so that a report never describes an older run.

    A node that raises an error with a ``report`` attribute (the ingestion's
    ``NoValidDataError`` when every symbol fails) gets that report saved to its output named
    ``data_quality_report`` before the run stops.
    """

    REPORT_OUTPUTS = ("data_quality_report",)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any) -> None:
        report = getattr(error, "report", None)
        if report is None:
            return
        for name in node.outputs:
            if name.rsplit(".", 1)[-1] in self.REPORT_OUTPUTS:
                catalog.save(name, report)
                logger.warning("saved %s of this failed run (%d rows)", name, len(report))


# Credentials a team may hold for itself: `<NAME>_<TEAM>` (e.g. ALPACA_API_KEY_RED) is what that
# team's runs use as <NAME>; a team without its own keeps the shared <NAME>, if any.
TEAM_CREDENTIALS = (
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
    "ALPHAVANTAGE_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


class TeamCredentialsHook:
    """Gives a run its own team's broker, data and storage keys, and never another team's.

    Every client in the project reads the plain names (``ALPACA_API_KEY``, ``AWS_ACCESS_KEY_ID``,
    ...). When a run starts, each plain name is set to the team's suffixed variable
    (``ALPACA_API_KEY_RED`` for env red) if the team has one, else back to the shared value: a
    red run followed by a blue run in one process (a season replay) never carries red's keys into
    blue's run. The shared value is what the plain name held before this hook first set it, or
    whatever set it since (a test, a caller). Suffixed variables of other teams are never read.
    """

    def __init__(self) -> None:
        self._shared: dict[str, str | None] = {}
        self._applied: dict[str, str | None] = {}

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        team = str(context.config_loader["parameters"].get("team", "base")).upper()
        own = []
        for name in TEAM_CREDENTIALS:
            current = os.environ.get(name)
            if name not in self._applied or current != self._applied[name]:
                self._shared[name] = current  # not the value this hook left: it is the shared one
            value = os.environ.get(f"{name}_{team}")
            if value is None:
                value = self._shared[name]
            else:
                own.append(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
            self._applied[name] = value
        if own:
            logger.info("team %s uses its own %s", team.lower(), ", ".join(own))


# ------------------------------------------------------------------ Ludwig config pre-flight
class LudwigPreflightHook:
    """Refuses a Ludwig config that cannot be valid before anything runs (see
    :mod:`stock_mlops.preflight`): a run that trains reads ``ludwig_config``, so its YAML,
    top-level keys and feature names are checked against the parameters and the feature registry
    without importing Ludwig, which takes most of a minute. The project's ``run`` command checks
    the same earlier, before the session; this hook covers every other way a run starts.

    ``tryfirst``: it runs before kedro-mlflow starts an MLflow run, so a refused config leaves no
    half-open run in the tracking store.
    """

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._params = dict(context.params)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        if LUDWIG_CONFIG not in pipeline.inputs():
            return
        check_catalog_config(catalog, self._params.get("feature_engineering"))


# ---------------------------------------------------------------------- MLflow views of a run
RUN_NAME_SEPARATOR = " \u00b7 "  # "red · __default__ · 2023-12-29"
# The datasets whose newest date is the run's as-of session when run_date is not given.
DATED_DATASETS = ("prices", "features")


class MlflowRunViewsHook:
    """What the MLflow UI shows of a run, set once kedro-mlflow has started it.

    - the run name ``<team> · <pipelines> · <run date>``: ``run_date`` when given, else the
      newest session in ``prices``/``features`` once a node reads or writes them (today's date
      until then, and for pipelines that read neither);
    - MLflow's standard source tags (``mlflow.source.git.commit``/``branch``/``repoURL``,
      ``mlflow.source.name``, ``mlflow.source.type``) from the project's own repository: MLflow
      looks at ``sys.argv[0]``, the git-ignored ``.venv/bin/kedro``, and finds none; uncommitted
      changes go to their own tag ``git_dirty`` so that the commit tag stays a pure SHA; the
      ``team`` tag, so that runs of several teams' experiments can be filtered together;
    - every leaf of the validated Ludwig config as a ``ludwig.*`` parameter, when it is saved;
    - ``features`` as the run's training input (``mlflow.log_input``, digest of every row) when
      the first training node that reads it together with the validated config starts, on a
      run that trains (a daily run that reuses the champion records no training input).

    ``trylast``: kedro-mlflow's ``before_pipeline_run`` (which starts the run) must come first.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._team = "base"
        self._run_date: str | None = None
        self._dated_from_data = False
        self._pipelines = "__default__"
        self._project_path = "."
        self._sources: dict[str, str] = {}
        self._input_logged = False

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._reset()  # one hook object serves every session of a process
        params = context.params
        self._team = str(params.get("team") or "base")
        self._run_date = str(params["run_date"]) if params.get("run_date") else None
        self._project_path = str(context.project_path)

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        self._sources = {"features": dataset_filepath(catalog, "features")}

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        import mlflow  # noqa: PLC0415

        if mlflow.active_run() is None:  # tracking disabled for these pipelines
            return
        # Kedro passes --pipelines through a set: name them in the daily loop's order.
        names = run_params.get("pipeline_names") or ["__default__"]
        self._pipelines = "+".join(sorted(set(names), key=_loop_order))
        tags = {
            "mlflow.runName": self._run_name(),
            "team": self._team,
            **source_tags(self._project_path),
        }
        mlflow.set_tags(tags)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if dataset_name in DATED_DATASETS:
            self._date_from(data)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name in DATED_DATASETS:
            self._date_from(data)
        elif dataset_name == "validated_ludwig_config":
            from stock_mlops.datasets.mlflow_views import MlflowParamsDataset  # noqa: PLC0415

            MlflowParamsDataset(prefix="ludwig").save(data)

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        if self._input_logged or node.namespace != "training":
            return
        if "features" not in inputs or "validated_ludwig_config" not in inputs:
            return
        from stock_mlops.pipelines.training.planning import TrainingPlan  # noqa: PLC0415

        plans = [value for value in inputs.values() if isinstance(value, TrainingPlan)]
        if not all(plan.due for plan in plans):
            return  # a day of the daily loop without training: no training input to record
        from stock_mlops.datasets.mlflow_views import MlflowInputDataset  # noqa: PLC0415

        config = inputs["validated_ludwig_config"]
        outputs = config.get("output_features") or [{}]
        MlflowInputDataset(
            name="features",
            context="training",
            source=self._sources.get("features"),
            targets=outputs[0].get("name"),
            # The split decides which rows trained: its dates are the run's training.split.*
            # parameters, so the input names the whole table the run read.
            tags={"rows": "all features; training.split.* selects the training rows"},
        ).save(inputs["features"])
        self._input_logged = True

    def _run_name(self) -> str:
        date = self._run_date or dt.datetime.now(dt.UTC).date().isoformat()
        return RUN_NAME_SEPARATOR.join([self._team, self._pipelines, date])

    def _date_from(self, data: Any) -> None:
        if self._run_date or self._dated_from_data:
            return
        import mlflow  # noqa: PLC0415

        dates = getattr(data, "get", lambda _: None)("date")
        if dates is None or len(dates) == 0:
            return
        self._run_date = str(dates.max().date())
        self._dated_from_data = True
        if mlflow.active_run() is not None:
            mlflow.set_tag("mlflow.runName", self._run_name())


def _loop_order(name: str) -> tuple[int, str]:
    from stock_mlops.pipeline_registry import DAILY_LOOP  # noqa: PLC0415

    return (DAILY_LOOP.index(name) if name in DAILY_LOOP else len(DAILY_LOOP), name)


def source_tags(project_path: str) -> dict[str, str]:
    """MLflow's standard source tags for a run of the project at ``project_path``.

    Args:
        project_path: The Kedro project's root.

    Returns:
        ``mlflow.source.name`` and ``mlflow.source.type`` always; when the project is a git
        checkout, ``mlflow.source.git.commit``, ``mlflow.source.git.branch``,
        ``mlflow.source.git.repoURL`` (credentials stripped by MLflow) and ``git_dirty``.
    """
    from mlflow.utils.git_utils import (  # noqa: PLC0415
        get_git_branch,
        get_git_commit,
        get_git_repo_url,
    )

    tags = {"mlflow.source.name": project_path, "mlflow.source.type": "PROJECT"}
    commit = get_git_commit(project_path)
    if not commit:
        return tags
    tags["mlflow.source.git.commit"] = commit
    branch = get_git_branch(project_path)
    if branch:
        tags["mlflow.source.git.branch"] = branch
    url = get_git_repo_url(project_path)
    if url:
        tags["mlflow.source.git.repoURL"] = url
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        tags["git_dirty"] = "true" if status.stdout.strip() else "false"
    except (OSError, subprocess.SubprocessError):
        pass  # unknown: no tag rather than a guess
    return tags
