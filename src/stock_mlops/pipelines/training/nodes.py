"""Nodes of the training pipeline: validate the team's config, train, evaluate honestly, gate.

Evaluation rows are always strictly later than the rows a model was fitted on, and every model
(the team's Ludwig model and the baselines) is scored on exactly the same rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core import metrics as M
from stock_mlops.core.model_handle import AliasUpdate, Forecaster, ModelHandle, ModelRegistration
from stock_mlops.core.params import TrainingParams
from stock_mlops.core.targets import direction, implied_close
from stock_mlops.core.vocabulary import (
    DIRECTION_SIGN,
    HOLDOUT,
    POOLED,
    TEAM_MODEL,
    TEST,
    VALIDATION,
)
from stock_mlops.pipelines.training import baselines
from stock_mlops.pipelines.training.config_validation import (
    input_columns,
    output_feature,
    validate_ludwig_config,
)
from stock_mlops.pipelines.training.splits import (
    Fold,
    holdout_fold,
    labelled_rows,
    split_rows,
    walk_forward_folds,
)

logger = logging.getLogger(__name__)

EVALUATED_SPLITS = (VALIDATION, TEST)


def validate_training_config(
    ludwig_config: dict[str, Any], features: pd.DataFrame, scope: str
) -> dict[str, Any]:
    """Validates the team's Ludwig config before anything trains.

    Args:
        ludwig_config: The YAML named by ``training.ludwig_config``.
        features: The ``features`` dataset (its columns are the allowed inputs).
        scope: ``params:training.scope`` (pooled models get ``symbol`` as an input).

    Returns:
        The config to train with.
    """
    config = validate_ludwig_config(ludwig_config, list(features.columns), scope)
    logger.info(
        "Ludwig config valid: %d inputs -> %s (%s scope)",
        len(config["input_features"]),
        output_feature(config)[0],
        scope,
    )
    return config


def train_forecaster(
    features: pd.DataFrame, ludwig_config: dict[str, Any], params: TrainingParams, team: str
) -> tuple[Forecaster, dict[str, list[dict[str, float]]], dict[str, str]]:
    """Trains the deployable model on the holdout fold's train rows (validation for early stop).

    Args:
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.
        team: ``params:team``.

    Returns:
        The forecaster (for the local model store), per-epoch curves as MLflow metric
        histories, and tags describing what was trained (config and data hashes).
    """
    from stock_mlops.models.forecaster import StockForecaster  # noqa: PLC0415 - imports mlflow

    fold = holdout_fold(params.split)
    parts = _fold_parts(features, fold)
    models, curves = _train_models(ludwig_config, parts, params)
    target, kind = output_feature(ludwig_config)
    inputs = input_columns(ludwig_config)
    example = parts[VALIDATION].head(2)[[C.SYMBOL, *[c for c in inputs if c != C.SYMBOL]]]
    data_hash = _frame_hash(parts["train"][[C.SYMBOL, C.DATE, *_model_columns(inputs, target)]])
    config_hash = hashlib.sha256(json.dumps(ludwig_config, sort_keys=True).encode()).hexdigest()
    metadata = {
        "team": team,
        "scope": params.scope,
        "target": target,
        "train_end": str(fold.train_end.date()),
        "validation_end": str(fold.validation_end.date()),
        "training_rows": len(parts["train"]),
        "training_data_sha256": data_hash,
        "ludwig_config_sha256": config_hash,
        "symbols": sorted(k for k in models if k != POOLED),
    }
    forecaster = StockForecaster(
        archives=models,
        input_columns=inputs,
        output_name=target,
        output_type=kind,
        scope=params.scope,
        metadata=metadata,
        input_example=json.loads(example.to_json(orient="records")),
    )
    tags = {
        "team": team,
        "scope": params.scope,
        "target": target,
        "training_data_sha256": data_hash,
        "ludwig_config_sha256": config_hash,
    }
    return forecaster, curves, tags


def register_forecaster(
    forecaster: ModelHandle, training_tags: dict[str, str]
) -> ModelRegistration:
    """Asks the registry to register the model this run stored locally, with its tags.

    Args:
        forecaster: The model just saved to the local store (``forecaster``).
        training_tags: The run's tags: what was trained (team, scope, target, data and config
            hashes); MLflow's own ``mlflow.*`` tags are not copied to the version.

    Returns:
        The registration the ``registered_forecaster`` dataset executes.
    """
    tags = {k: v for k, v in training_tags.items() if not k.startswith("mlflow.")}
    return ModelRegistration(model=forecaster, tags={**tags, "local_version": forecaster.version})


def _model_columns(inputs: list[str], target: str) -> list[str]:
    """The model's columns without duplicates, the symbol or the date (hashed separately)."""
    return [c for c in dict.fromkeys([*inputs, target]) if c not in (C.SYMBOL, C.DATE)]


def _fold_parts(features: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    parts = split_rows(labelled_rows(features), fold)
    for name in ("train", VALIDATION):
        if parts[name].empty:
            raise ValueError(
                f"fold '{fold.name}': no {name} rows (train_end={fold.train_end.date()}, "
                f"validation_end={fold.validation_end.date()}; features span "
                f"{features[C.DATE].min().date()}..{features[C.DATE].max().date()})"
            )
    return parts


def _train_models(
    config: dict[str, Any], parts: dict[str, pd.DataFrame], params: TrainingParams
) -> tuple[dict[str, bytes], dict[str, list[dict[str, float]]]]:
    from stock_mlops.pipelines.training.ludwig_trainer import (  # noqa: PLC0415
        MIN_TRAINING_ROWS,
        train_ludwig,
    )

    if params.scope == "pooled":
        groups = {POOLED: (parts["train"], parts[VALIDATION])}
    else:
        groups = {
            symbol: (rows, parts[VALIDATION][parts[VALIDATION][C.SYMBOL] == symbol])
            for symbol, rows in parts["train"].groupby(C.SYMBOL)
        }
    archives: dict[str, bytes] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    for key, (train, validation) in groups.items():
        if len(train) < MIN_TRAINING_ROWS:
            logger.warning("skipping %s: only %d training rows", key, len(train))
            continue
        trained = train_ludwig(config, train, validation, params.random_seed)
        archives[key] = trained.archive
        label = "pooled" if key == POOLED else key
        for name, values in trained.curves.items():
            curves[f"{TEAM_MODEL}.{label}.{name}"] = [
                {"value": float(v), "step": step} for step, v in enumerate(values, start=1)
            ]
        logger.info("trained %s on %d rows (%d epochs)", label, len(train), len(values))
    if not archives:
        raise ValueError("no model could be trained: every symbol lacks training rows")
    return archives, curves


def _frame_hash(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def train_walk_forward_models(
    features: pd.DataFrame, ludwig_config: dict[str, Any], params: TrainingParams
) -> dict[str, Forecaster]:
    """In ``walk_forward`` mode, one fresh model per yearly fold, trained on that fold's past.

    Args:
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.

    Returns:
        Fold name -> the fold's forecaster (empty in ``holdout`` mode).
    """
    if params.evaluation_mode != "walk_forward":
        return {}
    from stock_mlops.models.forecaster import StockForecaster  # noqa: PLC0415 - imports mlflow

    target, kind = output_feature(ludwig_config)
    labelled = labelled_rows(features)
    models = {}
    for fold in walk_forward_folds(params.walk_forward, labelled[C.TARGET_DATE].max()):
        parts = split_rows(labelled, fold)
        if parts[TEST].empty or len(parts["train"]) == 0:
            logger.warning("walk-forward fold %s has no rows; skipped", fold.name)
            continue
        archives, _ = _train_models(ludwig_config, parts, params)
        models[fold.name] = StockForecaster(
            archives=archives,
            input_columns=input_columns(ludwig_config),
            output_name=target,
            output_type=kind,
            scope=params.scope,
            metadata={"fold": fold.name},
            input_example=[],
        )
    return models


def predict_out_of_sample(
    forecaster: ModelHandle,
    walk_forward_models: dict[str, Forecaster],
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
    direction_band: float,
) -> pd.DataFrame:
    """Out-of-sample predictions of the model and every baseline on the same rows.

    The holdout fold uses the deployed forecaster (as stored) on its validation and test rows;
    each walk-forward fold uses its own model on its test year (its validation rows chose its
    early-stopping epoch, so only the test year is out of sample).

    Args:
        forecaster: The model stored by this run.
        walk_forward_models: Fold name -> forecaster (empty in ``holdout`` mode).
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.
        direction_band: ``params:feature_engineering.targets.direction_band``.

    Returns:
        The ``evaluation_predictions`` dataset.
    """
    fold = holdout_fold(params.split)
    deployed = forecaster.load().unwrap_python_model()
    frames = [
        _evaluate_fold(
            fold, _fold_parts(features, fold), deployed, ludwig_config, params, direction_band
        )
    ]
    if walk_forward_models:
        labelled = labelled_rows(features)
        for wf_fold in walk_forward_folds(params.walk_forward, labelled[C.TARGET_DATE].max()):
            if wf_fold.name not in walk_forward_models:
                continue
            parts = split_rows(labelled, wf_fold)
            parts[VALIDATION] = parts[VALIDATION].iloc[0:0]
            frames.append(
                _evaluate_fold(
                    wf_fold,
                    parts,
                    walk_forward_models[wf_fold.name],
                    ludwig_config,
                    params,
                    direction_band,
                )
            )
    evaluation = pd.concat(frames, ignore_index=True)
    logger.info(
        "evaluation: %d rows over %d folds for models %s",
        len(evaluation),
        evaluation["fold"].nunique(),
        sorted(evaluation["model"].unique()),
    )
    return evaluation


def _evaluate_fold(
    fold: Fold,
    parts: dict[str, pd.DataFrame],
    forecaster: Forecaster,
    config: dict[str, Any],
    params: TrainingParams,
    band: float,
) -> pd.DataFrame:
    target, _ = output_feature(config)
    frames = []
    for split in EVALUATED_SPLITS:
        rows = parts[split]
        if forecaster.scope != "pooled":
            rows = rows[rows[C.SYMBOL].isin(forecaster.symbols)]
        if rows.empty:
            continue
        raw = forecaster.predict(None, rows)["prediction"]
        raw.index = rows.index
        model_close = implied_close(target, raw, rows[C.CLOSE])
        model_direction = (
            raw.astype(object)
            if forecaster.output_type == "category"
            else direction(model_close / rows[C.CLOSE] - 1, band)
        )
        candidates = {
            TEAM_MODEL: (model_close, model_direction),
            baselines.NAIVE: (baselines.naive_last_close(rows), None),
            baselines.DRIFT: (baselines.mean_drift(parts["train"], rows), None),
            baselines.RIDGE: (
                baselines.ridge(
                    parts["train"],
                    rows,
                    input_columns(config),
                    target,
                    params.ridge_alpha,
                    params.scope,
                ),
                None,
            ),
        }
        for model, (close, called_direction) in candidates.items():
            predicted_direction = (
                called_direction
                if called_direction is not None
                else direction(close / rows[C.CLOSE] - 1, band)
            )
            frames.append(
                pd.DataFrame(
                    {
                        C.SYMBOL: rows[C.SYMBOL].to_numpy(),
                        C.DATE: rows[C.TARGET_DATE].to_numpy(),
                        "feature_date": rows[C.DATE].to_numpy(),
                        "model": model,
                        "split": split,
                        "fold": fold.name,
                        "last_close": rows[C.CLOSE].to_numpy(),
                        "prediction": close.to_numpy(dtype=float),
                        "actual": rows[C.TARGET_CLOSE].to_numpy(),
                        "predicted_direction": predicted_direction.to_numpy(),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def compute_evaluation_metrics(
    evaluation_predictions: pd.DataFrame, features: pd.DataFrame
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Metrics computed from ``evaluation_predictions`` (and, for the scale of Hyndman's MASE,
    the realised returns in ``features`` before each fold's first evaluated date).

    Intervals of directional accuracy, its base rate and skill, and the IC come from a bootstrap
    over dates (all symbols of a day together); Wilson's interval stays as a secondary figure.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        features: The ``features`` dataset (only ``symbol, target_date, target_return_1d``).

    Returns:
        ``evaluation_metrics``: model -> the holdout test metrics at the top level, plus
        ``validation`` (holdout validation) and ``walk_forward`` (fold -> metrics); and the same
        figures flattened for MLflow (``<model>.<split>.<metric>``).
    """
    table: dict[str, Any] = {}
    flat: dict[str, dict[str, float]] = {}
    naive = evaluation_predictions[evaluation_predictions["model"] == baselines.NAIVE]
    naive_mae = {
        key: float((group["prediction"] - group["actual"]).abs().mean())
        for key, group in naive.groupby(["fold", "split"])
    }
    scales = _mase_scales(evaluation_predictions, features)
    for (model, fold, split), rows in evaluation_predictions.groupby(["model", "fold", "split"]):
        values = _metrics_for(rows, naive_mae.get((fold, split)), scales.get(fold))
        entry = table.setdefault(model, {})
        if fold == HOLDOUT and split == TEST:
            entry.update(values)
        elif fold == HOLDOUT:
            entry[split] = values
        else:
            entry.setdefault("walk_forward", {})[fold] = values
        prefix = f"{model}.{split}" if fold == HOLDOUT else f"{model}.wf{fold}"
        for name, value in values.items():
            if value is not None:
                flat[f"{prefix}.{name}"] = {"value": value, "step": 0}
    return table, flat


def _mase_scales(evaluation: pd.DataFrame, features: pd.DataFrame) -> dict[str, pd.Series]:
    """Per fold, each symbol's mean |1-day return| over the labelled rows dated before the
    fold's first evaluated target date: the in-sample error of the random walk (its training
    period for the holdout fold), in return units so the price level does not move it."""
    labelled = features[features[C.TARGET_RETURN].notna()]
    first = evaluation.groupby("fold")[C.DATE].min()
    return {
        fold: M.naive_return_scale(
            labelled[C.SYMBOL], labelled[C.TARGET_DATE], labelled[C.TARGET_RETURN], before
        )
        for fold, before in first.items()
    }


def _metrics_for(
    rows: pd.DataFrame, naive_mae: float | None, scale: pd.Series | None
) -> dict[str, float | None]:
    if rows["prediction"].notna().any():
        values = M.forecast_metrics(
            rows["prediction"],
            rows["actual"],
            rows["last_close"],
            naive_mae,
            dates=rows[C.DATE],
            mase_scale=None if scale is None else rows[C.SYMBOL].map(scale),
        )
    else:  # a direction classifier: only its calls can be scored
        predicted = rows["predicted_direction"].map(DIRECTION_SIGN).fillna(0)
        actual = np.sign(rows["actual"] / rows["last_close"] - 1)
        values = {
            "n": float(len(rows)),
            **M.directional_metrics(predicted, actual),
            **M.date_bootstrap_intervals(rows[C.DATE], predicted, actual, with_ic=False),
        }
    return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in values.items()}


def score_champion(
    champion_model: ModelHandle | None, features: pd.DataFrame, params: TrainingParams
) -> dict[str, Any]:
    """The current champion's MAE on return over this run's validation rows.

    Args:
        champion_model: The registry's champion, or None when there is none.
        features: The ``features`` dataset.
        params: ``params:training``.

    Returns:
        ``version``, ``mae_return`` (None when there is no champion or it cannot score this
        data) and a ``note``.
    """
    if champion_model is None:
        return {"version": None, "mae_return": None, "note": "no champion registered"}
    rows = _fold_parts(features, holdout_fold(params.split))[VALIDATION]
    try:
        model = champion_model.load()
        wrapped = model.unwrap_python_model()
        raw = model.predict(rows[wrapped.columns])["prediction"]
        target = wrapped.output_name
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot be compared"
        logger.warning("champion %s cannot score this data: %s", champion_model.version, exc)
        return {"version": champion_model.version, "mae_return": None, "note": str(exc)[:300]}
    close = implied_close(target, pd.Series(np.asarray(raw), index=rows.index), rows[C.CLOSE])
    mae = float((close / rows[C.CLOSE] - 1 - rows[C.TARGET_RETURN]).abs().mean())
    return {"version": champion_model.version, "mae_return": mae, "note": ""}


def decide_promotion(
    evaluation_metrics: dict[str, Any],
    champion_score: dict[str, Any],
    registered_forecaster: dict[str, Any],
    params: TrainingParams,
) -> dict[str, Any]:
    """Promotes the new version only if it beats the naive baseline and the current champion.

    Both comparisons use MAE on return over the holdout validation period.

    Args:
        evaluation_metrics: The ``evaluation_metrics`` document.
        champion_score: The champion's score on this run's validation rows.
        registered_forecaster: The version this run registered (``name``, ``version``).
        params: ``params:training`` (its ``promotion`` section).

    Returns:
        The ``promotion_decision`` report.
    """
    margin = 1 - params.promotion.min_improvement
    candidate = (evaluation_metrics.get(TEAM_MODEL, {}).get(VALIDATION) or {}).get("mae_return")
    naive = (evaluation_metrics.get(baselines.NAIVE, {}).get(VALIDATION) or {}).get("mae_return")
    champion = champion_score.get("mae_return")
    reasons = []
    if candidate is None or naive is None:
        reasons.append("the candidate's or the naive baseline's validation MAE is missing")
    else:
        if not candidate < naive * margin:
            reasons.append(f"MAE on return {candidate:.6f} does not beat naive {naive:.6f}")
        if champion is not None and not candidate < champion * margin:
            reasons.append(
                f"MAE on return {candidate:.6f} does not beat champion "
                f"v{champion_score['version']} ({champion:.6f})"
            )
    promote = not reasons
    decision = {
        "model_name": registered_forecaster.get("name"),
        "candidate_version": registered_forecaster.get("version"),
        "promote": promote,
        "candidate_mae_return": candidate,
        "naive_mae_return": naive,
        "champion_version": champion_score.get("version"),
        "champion_mae_return": champion,
        "reason": "beats the naive baseline and the champion" if promote else "; ".join(reasons),
    }
    logger.info("promotion decision: %s", decision)
    return decision


def request_alias_update(promotion_decision: dict[str, Any]) -> AliasUpdate:
    """The promotion decision as an instruction for the registry's champion alias.

    Args:
        promotion_decision: The ``promotion_decision`` report.

    Returns:
        Tag the candidate version with the decision; move the alias only when promoted.
    """
    return AliasUpdate(
        candidate_version=str(promotion_decision["candidate_version"]),
        promote=bool(promotion_decision["promote"]),
        reason=str(promotion_decision["reason"]),
    )
