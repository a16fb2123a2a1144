"""Project hooks."""

from __future__ import annotations

import logging
import os
from pathlib import Path

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
