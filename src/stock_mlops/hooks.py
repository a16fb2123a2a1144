"""Project hooks."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from stock_mlops.core.params import validate_parameters

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
        self._release()

    def _release(self) -> None:
        if self._held:
            self._held.pop().release()


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
    (``ALPACA_API_KEY_RED`` for env red) if the team has one, else back to the value the process
    started with: a red run followed by a blue run in one process (a season replay) never
    carries red's keys into blue's run. Suffixed variables of other teams are never read.
    """

    def __init__(self) -> None:
        self._shared = {name: os.environ.get(name) for name in TEAM_CREDENTIALS}

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        team = str(context.config_loader["parameters"].get("team", "base")).upper()
        own = []
        for name in TEAM_CREDENTIALS:
            value = os.environ.get(f"{name}_{team}")
            if value is None:
                value = self._shared[name]
            else:
                own.append(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if own:
            logger.info("team %s uses its own %s", team.lower(), ", ".join(own))
