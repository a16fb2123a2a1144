"""Project hooks."""

from __future__ import annotations

import logging

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from stock_mlops.core.params import validate_parameters

logger = logging.getLogger(__name__)


class ParameterValidationHook:
    """Validates every parameter (base + environment + ``--params``) before anything runs, so a
    typo such as ``--params trading.treshold=0.01`` stops the run at once with the key named."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        validate_parameters(context.params)
