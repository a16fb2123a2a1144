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
