"""Nodes of the inference pipeline: predict the next trading day for every symbol."""

from __future__ import annotations

import logging

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.model_handle import ModelHandle
from stock_mlops.core.outcomes import as_of_date
from stock_mlops.core.params import InferenceParams
from stock_mlops.core.targets import direction, implied_close

logger = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """No model is available for the requested source; the message says what to run."""


def select_model(
    champion: ModelHandle | None, latest: ModelHandle | None, model_source: str
) -> ModelHandle:
    """Picks the model to predict with according to ``inference.model_source``.

    Args:
        champion: The registry's champion, or None.
        latest: The newest model in the local store, or None.
        model_source: ``champion``, ``latest`` or ``champion_or_latest``.

    Returns:
        The handle of the model to use.

    Raises:
        NoModelError: When the requested model does not exist.
    """
    if model_source == "champion" and champion is None:
        raise NoModelError(
            "inference.model_source is 'champion' but the registry has no champion; run the "
            "training pipeline (it starts every registry with the naive forecaster as champion)"
        )
    if model_source == "latest" and latest is None:
        raise NoModelError("no locally trained model found; run the training pipeline first")
    if model_source == "champion_or_latest":
        if champion is None and latest is None:
            raise NoModelError(
                "neither a champion nor a locally trained model exists; run the training "
                "pipeline first"
            )
        if champion is None:
            logger.warning("no champion registered yet: predicting with the newest local model")
    chosen = champion if model_source != "latest" and champion is not None else latest
    assert chosen is not None
    if chosen is not champion:
        # Asked for explicitly: the newest local model, whatever the gate said about it.
        logger.warning(
            "predicting with %s, the newest model trained here, not the champion %s: the gate "
            "may have refused it (inference.model_source=%s)",
            chosen.version,
            champion.version if champion else "(none)",
            model_source,
        )
    logger.info("predicting with %s (%s)", chosen.version, chosen.source)
    return chosen


def feature_rows_as_of(features: pd.DataFrame, run_date: str | None) -> pd.DataFrame:
    """The feature row of every symbol dated ``run_date`` (default: the newest date).

    Args:
        features: The ``features`` dataset.
        run_date: ``params:run_date``.

    Returns:
        One row per symbol with a bar on that date.

    Raises:
        ValueError: When no symbol has a row on that date.
    """
    as_of = as_of_date(run_date, features[C.DATE])
    rows = features[features[C.DATE] == as_of]
    stale = sorted(set(features[C.SYMBOL]) - set(rows[C.SYMBOL]))
    if stale:
        logger.warning("no features dated %s for %s: not predicted", as_of.date(), stale)
    if rows.empty:
        raise ValueError(
            f"no feature rows dated {as_of.date()} (features end "
            f"{features[C.DATE].max().date()}); check run_date"
        )
    return rows


def predict_next_day(
    features: pd.DataFrame,
    champion_model: ModelHandle | None,
    latest_model: ModelHandle | None,
    params: InferenceParams,
    direction_band: float,
    team: str,
    run_date: str | None,
    run_info: dict[str, str],
) -> pd.DataFrame:
    """Predicts the next trading day's close for every symbol with features on ``run_date``.

    Args:
        features: The ``features`` dataset.
        champion_model: The registry's champion, or None.
        latest_model: The newest model in the local store, or None.
        params: ``params:inference``.
        direction_band: ``params:feature_engineering.targets.direction_band``.
        team: ``params:team``.
        run_date: ``params:run_date``.
        run_info: The run's identity and start time.

    Returns:
        New rows for the append-only ``predictions`` log.
    """
    band = direction_band
    handle = select_model(champion_model, latest_model, params.model_source)
    rows = feature_rows_as_of(features, run_date)
    model = handle.load()
    wrapped = model.unwrap_python_model()
    if wrapped.scope != "pooled":
        unknown = sorted(set(rows[C.SYMBOL]) - set(wrapped.symbols))
        if unknown:
            logger.warning("model %s has no model for %s: not predicted", handle.version, unknown)
        rows = rows[rows[C.SYMBOL].isin(wrapped.symbols)]
    raw = model.predict(rows[wrapped.columns])["prediction"]
    raw.index = rows.index
    close = implied_close(wrapped.output_name, raw, rows[C.CLOSE])
    predicted_return = close / rows[C.CLOSE] - 1
    predicted_direction = (
        raw.astype(object)
        if wrapped.output_type == "category"
        else direction(predicted_return, band)
    )
    log = pd.DataFrame(
        {
            "run_id": run_info["run_id"],
            "model_version": handle.version,
            "team": team,
            C.SYMBOL: rows[C.SYMBOL].to_numpy(),
            "feature_date": rows[C.DATE].to_numpy(),
            C.TARGET_DATE: rows[C.TARGET_DATE].to_numpy(),
            "last_close": rows[C.CLOSE].to_numpy(dtype=float),
            "prediction": close.to_numpy(dtype=float),
            "predicted_return": predicted_return.to_numpy(dtype=float),
            "predicted_direction": predicted_direction.to_numpy(dtype=object),
            "created_at": pd.Timestamp(run_info["started_at"]),
        }
    )[C.PREDICTION_LOG_COLUMNS]
    logger.info("predicted %d symbols for %s", len(log), log[C.TARGET_DATE].max().date())
    return log
