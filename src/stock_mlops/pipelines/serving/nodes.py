"""Nodes of the serving pipeline: ask for the champion to be wrapped for prediction from prices."""

from __future__ import annotations

import logging

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.model_handle import ModelHandle, PriceModelRequest
from stock_mlops.core.params import FeatureEngineeringParams, ServingParams

logger = logging.getLogger(__name__)


class NoChampionError(LookupError):
    """The team has no champion to serve; the message says how one comes to exist."""


def request_price_model(
    champion_model: ModelHandle | None,
    prices: pd.DataFrame,
    feature_engineering: FeatureEngineeringParams,
    params: ServingParams,
) -> PriceModelRequest:
    """Asks for the champion to be registered as a model that predicts from recent bars.

    Args:
        champion_model: The registry's champion (``champion_model``), or None.
        prices: The ``prices`` dataset (each symbol's newest bars make the input example).
        feature_engineering: ``params:feature_engineering``: the features the model computes.
        params: ``params:serving``.

    Returns:
        The request the ``price_forecaster`` dataset builds and registers.

    Raises:
        NoChampionError: When no registered version holds the champion alias.
    """
    if champion_model is None or champion_model.uri is None:
        raise NoChampionError(
            "no registered version holds the alias 'champion': the training pipeline's "
            "promotion gate sets it (see 08_reporting/promotion_decision.json); run the "
            "training pipeline first"
        )
    newest = prices.sort_values([C.SYMBOL, C.DATE]).groupby(C.SYMBOL).tail(params.min_bars)
    logger.info(
        "prediction from prices for %s: %d bars per symbol", champion_model.version, params.min_bars
    )
    return PriceModelRequest(
        source=champion_model,
        feature_engineering=feature_engineering.model_dump(mode="json"),
        min_bars=params.min_bars,
        example_bars=newest.reset_index(drop=True),
    )
