"""Nodes of the training pipeline: plan, validate the team's config, train, evaluate, gate.

Evaluation rows are always strictly later than the rows a model was fitted on, every model (the
team's Ludwig model and the baselines) is scored on exactly the same rows, and the promotion
gate scores on rows that neither fitted nor early-stopped the candidate (nor the champion).

Every node follows the :class:`~.planning.TrainingPlan`: on a day without retraining it returns
:data:`UNCHANGED` for what it would store, and nothing stored changes.
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
from stock_mlops.core import forecast_tests
from stock_mlops.core import metrics as M
from stock_mlops.core.model_handle import AliasUpdate, Forecaster, ModelHandle, ModelRegistration
from stock_mlops.core.outcomes import as_of_date
from stock_mlops.core.params import TrainingParams
from stock_mlops.core.targets import direction, implied_close
from stock_mlops.core.vocabulary import (
    DIRECTION_SIGN,
    GATE,
    HOLDOUT,
    LUDWIG_MODEL,
    NAIVE_MODEL,
    POOLED,
    TEAM_MODEL,
    TEST,
    TRAIN,
    UNCHANGED,
    VALIDATION,
    Unchanged,
)
from stock_mlops.pipelines.training import baselines
from stock_mlops.pipelines.training.config_validation import (
    input_columns,
    output_feature,
    validate_ludwig_config,
)
from stock_mlops.pipelines.training.executors import Task, open_executor
from stock_mlops.pipelines.training.hyperopt import FittedModel, fit_model
from stock_mlops.pipelines.training.planning import (
    HISTORY_COLUMNS,
    TrainingPlan,
    config_hash,
    holdout_fold,
    params_hash,
    retrain_reason,
)
from stock_mlops.pipelines.training.splits import (
    Fold,
    labelled_rows,
    split_rows,
    walk_forward_folds,
)

logger = logging.getLogger(__name__)

EVALUATED_SPLITS = (VALIDATION, GATE, TEST)
TRIAL_COLUMNS = ["model", "fold", "trial", "parameters", "validation_score", "epochs", "best"]


# ------------------------------------------------------------------------------------- plan
def plan_training(
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
    run_date: str | None,
) -> TrainingPlan:
    """The plan of ``kedro run --pipelines training``: train now, on the fold as of the run date.

    Args:
        features: The ``features`` dataset.
        ludwig_config: The team's Ludwig YAML as written (hashed, not validated here).
        params: ``params:training``.
        run_date: ``params:run_date`` (None: the newest date in the features).

    Returns:
        A plan that trains.
    """
    as_of = as_of_date(run_date, features[C.DATE])
    return _plan(True, "training was asked for", as_of, features, ludwig_config, params)


def schedule_retraining(
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
    run_date: str | None,
    last_training_runs: pd.DataFrame,
    previous_monitoring_alert: dict[str, Any] | None,
) -> TrainingPlan:
    """The daily loop's plan: train only when the retrain policy says so.

    Args:
        features: The ``features`` dataset.
        ludwig_config: The team's Ludwig YAML as written.
        params: ``params:training`` (``retrain`` is the policy).
        run_date: ``params:run_date``.
        last_training_runs: The ``training_history`` log as it was before this run.
        previous_monitoring_alert: The monitoring alert of the last run before this one.

    Returns:
        The plan; ``due`` False means every training node leaves its outputs as they are.
    """
    as_of = as_of_date(run_date, features[C.DATE])
    reason = retrain_reason(
        as_of,
        config_hash(ludwig_config),
        params_hash(params),
        params,
        last_training_runs,
        previous_monitoring_alert,
    )
    if reason is None:
        logger.info("no retraining on %s: the champion stays in service", as_of.date())
        return _plan(False, "not due", as_of, features, ludwig_config, params)
    logger.info("retraining on %s: %s", as_of.date(), reason)
    return _plan(True, reason, as_of, features, ludwig_config, params)


def _plan(
    due: bool,
    reason: str,
    as_of: pd.Timestamp,
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
) -> TrainingPlan:
    fold = holdout_fold(features, params, as_of) if due else _unused_fold(as_of)
    if due:
        logger.info("training fold as of %s: %s", as_of.date(), fold.describe())
    return TrainingPlan(
        due=due,
        reason=reason,
        run_date=as_of,
        fold=fold,
        ludwig_config_sha256=config_hash(ludwig_config),
        training_params_sha256=params_hash(params),
    )


def _unused_fold(as_of: pd.Timestamp) -> Fold:
    # A day without training computes no fold (it may lack the history a fold needs).
    return Fold(name=HOLDOUT, train_end=as_of, validation_end=as_of)


# ------------------------------------------------------------------------- config and model
def validate_training_config(
    ludwig_config: dict[str, Any], features: pd.DataFrame, scope: str, training_plan: TrainingPlan
) -> dict[str, Any] | Unchanged:
    """Validates the team's Ludwig config before anything trains.

    Args:
        ludwig_config: The YAML named by ``training.ludwig_config``.
        features: The ``features`` dataset (its columns are the allowed inputs).
        scope: ``params:training.scope`` (pooled models get ``symbol`` as an input).
        training_plan: This run's plan.

    Returns:
        The config to train with (UNCHANGED on a day without training).
    """
    if not training_plan.due:
        return UNCHANGED
    config = validate_ludwig_config(ludwig_config, list(features.columns), scope)
    logger.info(
        "Ludwig config valid: %d inputs -> %s (%s scope)",
        len(config["input_features"]),
        output_feature(config)[0],
        scope,
    )
    return config


def train_forecaster(
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
    team: str,
    training_plan: TrainingPlan,
) -> tuple[Forecaster | Unchanged, dict[str, list[dict[str, float]]], dict[str, str], pd.DataFrame]:
    """Trains the deployable model on the fold's train rows (validation for early stopping),
    after the config's hyperparameter search when it has one; each model (symbol, or the pooled
    one) is a task on ``training.executor``.

    Args:
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.
        team: ``params:team``.
        training_plan: This run's plan (its fold).

    Returns:
        The forecaster (for the local model store), per-epoch curves and the number of
        configurations tried as MLflow metric histories, tags describing what was trained
        (window, config and data hashes), and every hyperopt trial (empty without a search).
    """
    if not training_plan.due:
        return UNCHANGED, {}, {}, pd.DataFrame(columns=TRIAL_COLUMNS)
    from stock_mlops.models.forecaster import StockForecaster  # noqa: PLC0415 - imports mlflow

    fold = training_plan.fold
    parts = _fold_parts(features, fold)
    fitted = _train_models(ludwig_config, {"": parts}, params)[""]
    models = {key: model.archive for key, model in fitted.items()}
    curves = _curves(fitted)
    target, kind = output_feature(ludwig_config)
    inputs = input_columns(ludwig_config)
    example = parts[VALIDATION].head(2)[[C.SYMBOL, *[c for c in inputs if c != C.SYMBOL]]]
    data_hash = _frame_hash(parts[TRAIN][[C.SYMBOL, C.DATE, *_model_columns(inputs, target)]])
    window = {k: v for k, v in fold.describe().items() if v is not None}
    metadata = {
        "team": team,
        "kind": LUDWIG_MODEL,
        "scope": params.scope,
        "target": target,
        **window,
        "run_date": str(training_plan.run_date.date()),
        "training_rows": len(parts[TRAIN]),
        "training_data_sha256": data_hash,
        "ludwig_config_sha256": training_plan.ludwig_config_sha256,
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
        "kind": LUDWIG_MODEL,
        "scope": params.scope,
        "target": target,
        **window,
        "run_date": str(training_plan.run_date.date()),
        "training_data_sha256": data_hash,
        "ludwig_config_sha256": training_plan.ludwig_config_sha256,
        "executor": params.executor,
    }
    return forecaster, curves, tags, trials_table(fitted)


def register_forecaster(
    forecaster: ModelHandle, training_tags: dict[str, str], training_plan: TrainingPlan
) -> ModelRegistration | Unchanged:
    """Asks the registry to register the model this run stored locally, with its tags.

    Args:
        forecaster: The model just saved to the local store (``forecaster``).
        training_tags: The run's tags: what was trained (team, window, data and config hashes);
            MLflow's own ``mlflow.*`` tags are not copied to the version.
        training_plan: This run's plan.

    Returns:
        The registration the ``registered_forecaster`` dataset executes.
    """
    if not training_plan.due:
        return UNCHANGED
    tags = {k: v for k, v in training_tags.items() if not k.startswith("mlflow.")}
    return ModelRegistration(model=forecaster, tags={**tags, "local_version": forecaster.version})


def _model_columns(inputs: list[str], target: str) -> list[str]:
    """The model's columns without duplicates, the symbol or the date (hashed separately)."""
    return [c for c in dict.fromkeys([*inputs, target]) if c not in (C.SYMBOL, C.DATE)]


def _fold_parts(features: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    parts = split_rows(labelled_rows(features), fold)
    for name in (TRAIN, VALIDATION):
        if parts[name].empty:
            raise ValueError(
                f"fold '{fold.name}': no {name} rows (train_end={fold.train_end.date()}, "
                f"validation_end={fold.validation_end.date()}; features span "
                f"{features[C.DATE].min().date()}..{features[C.DATE].max().date()})"
            )
    return parts


def _model_tasks(
    config: dict[str, Any], parts: dict[str, pd.DataFrame], params: TrainingParams, fold: str = ""
) -> list[Task]:
    """One task per model to train: the pooled model, or each symbol with enough rows."""
    from stock_mlops.pipelines.training.ludwig_trainer import MIN_TRAINING_ROWS  # noqa: PLC0415

    if params.scope == "pooled":
        groups = {POOLED: (parts[TRAIN], parts[VALIDATION])}
    else:
        groups = {
            symbol: (rows, parts[VALIDATION][parts[VALIDATION][C.SYMBOL] == symbol])
            for symbol, rows in parts[TRAIN].groupby(C.SYMBOL)
        }
    tasks = []
    for key, (train, validation) in groups.items():
        if len(train) < MIN_TRAINING_ROWS:
            logger.warning("skipping %s: only %d training rows", key, len(train))
            continue
        task_key = f"{fold}/{key}" if fold else key
        tasks.append(Task(task_key, fit_model, (config, train, validation, params.random_seed)))
    return tasks


def _train_models(
    config: dict[str, Any], folds: dict[str, dict[str, pd.DataFrame]], params: TrainingParams
) -> dict[str, dict[str, FittedModel]]:
    """Trains every model of every fold (``{"": parts}`` for the deployable model) as
    independent tasks on ``training.executor``; fold name -> model key -> fitted model."""
    tasks = [
        task for fold, parts in folds.items() for task in _model_tasks(config, parts, params, fold)
    ]
    if not tasks:
        raise ValueError("no model could be trained: every symbol lacks training rows")
    with open_executor(params) as executor:
        fitted = executor.run(tasks, "training")
    models: dict[str, dict[str, FittedModel]] = {fold: {} for fold in folds}
    for task_key, model in fitted.items():
        fold, _, key = task_key.rpartition("/")
        models[fold][key] = model
    return models


def _curves(models: dict[str, FittedModel]) -> dict[str, list[dict[str, float]]]:
    """Per-epoch curves as MLflow metric histories, and the number of configurations tried."""
    curves: dict[str, list[dict[str, float]]] = {}
    for key, model in models.items():
        label = "pooled" if key == POOLED else key
        for name, values in model.curves.items():
            curves[f"{TEAM_MODEL}.{label}.{name}"] = [
                {"value": float(v), "step": step} for step, v in enumerate(values, start=1)
            ]
    # The deflated Sharpe ratio of the competition counts every configuration a team tried.
    tried = max((len(model.trials) for model in models.values()), default=0)
    curves["trials"] = [{"value": float(max(1, tried)), "step": 0}]
    return curves


def trials_table(models: dict[str, FittedModel], fold: str = HOLDOUT) -> pd.DataFrame:
    """Every hyperopt trial of every model: what it tried, its validation score, the winner."""
    rows = [
        {
            "model": "pooled" if key == POOLED else key,
            "fold": fold,
            "trial": trial.number,
            "parameters": json.dumps(trial.parameters, sort_keys=True, default=str),
            "validation_score": trial.score,
            "epochs": trial.epochs,
            "best": trial.number == model.best_trial,
        }
        for key, model in models.items()
        for trial in model.trials
    ]
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def _frame_hash(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def train_walk_forward_models(
    features: pd.DataFrame,
    ludwig_config: dict[str, Any],
    params: TrainingParams,
    training_plan: TrainingPlan,
) -> dict[str, Forecaster]:
    """In ``walk_forward`` mode, one fresh model per yearly fold, trained on that fold's past.

    Args:
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.
        training_plan: This run's plan.

    Returns:
        Fold name -> the fold's forecaster (empty in ``holdout`` mode or without training).
    """
    if not training_plan.due or params.evaluation_mode != "walk_forward":
        return {}
    from stock_mlops.models.forecaster import StockForecaster  # noqa: PLC0415 - imports mlflow

    target, kind = output_feature(ludwig_config)
    labelled = labelled_rows(features)
    labelled = labelled[labelled[C.TARGET_DATE] <= training_plan.run_date]
    folds = {}
    for fold in walk_forward_folds(params.walk_forward, labelled[C.TARGET_DATE].max()):
        parts = split_rows(labelled, fold)
        if parts[TEST].empty or len(parts[TRAIN]) == 0:
            logger.warning("walk-forward fold %s has no rows; skipped", fold.name)
            continue
        folds[fold.name] = parts
    if not folds:
        return {}
    # Every fold's every model is one task: the folds train side by side on a cluster.
    fitted = _train_models(ludwig_config, folds, params)
    models = {}
    for name, fold_models in fitted.items():
        if not fold_models:
            continue
        models[name] = StockForecaster(
            archives={key: model.archive for key, model in fold_models.items()},
            input_columns=input_columns(ludwig_config),
            output_name=target,
            output_type=kind,
            scope=params.scope,
            metadata={"fold": name},
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
    training_plan: TrainingPlan,
) -> pd.DataFrame | Unchanged:
    """Out-of-sample predictions of the model and every baseline on the same rows.

    The holdout fold uses the deployed forecaster (as stored) on its validation, gate and test
    rows; each walk-forward fold uses its own model on its test year (its validation rows chose
    its early-stopping epoch, so only the test year is out of sample).

    Args:
        forecaster: The model stored by this run.
        walk_forward_models: Fold name -> forecaster (empty in ``holdout`` mode).
        features: The ``features`` dataset.
        ludwig_config: The validated Ludwig config.
        params: ``params:training``.
        direction_band: ``params:feature_engineering.targets.direction_band``.
        training_plan: This run's plan (its fold).

    Returns:
        The ``evaluation_predictions`` dataset.
    """
    if not training_plan.due:
        return UNCHANGED
    fold = training_plan.fold
    deployed = forecaster.load().unwrap_python_model()
    frames = [
        _evaluate_fold(
            fold, _fold_parts(features, fold), deployed, ludwig_config, params, direction_band
        )
    ]
    if walk_forward_models:
        labelled = labelled_rows(features)
        labelled = labelled[labelled[C.TARGET_DATE] <= training_plan.run_date]
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
    selected = {}
    for split in EVALUATED_SPLITS:
        rows = parts[split]
        if forecaster.scope != "pooled":
            rows = rows[rows[C.SYMBOL].isin(forecaster.symbols)]
        if not rows.empty:
            selected[split] = rows
    scored = _predictions(forecaster, selected, params, baselines_from=(parts["train"], config))
    frames = []
    for split, rows in selected.items():
        raw = scored[split]["prediction"]
        model_close = implied_close(target, raw, rows[C.CLOSE])
        model_direction = (
            raw.astype(object)
            if forecaster.output_type == "category"
            else direction(model_close / rows[C.CLOSE] - 1, band)
        )
        candidates = {
            TEAM_MODEL: (model_close, model_direction),
            **{name: (scored[split][name], None) for name in baselines.BASELINES},
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


# The baselines' training rows and the Ludwig config their inputs and target come from.
BaselinesFrom = tuple[pd.DataFrame, dict[str, Any]]


def _predictions(
    forecaster: Forecaster,
    selected: dict[str, pd.DataFrame],
    params: TrainingParams,
    baselines_from: BaselinesFrom | None = None,
) -> dict[str, pd.DataFrame]:
    """Each split's rows scored: the forecaster's ``prediction`` and, with ``baselines_from``,
    a column of predicted closes per baseline, indexed as the rows.

    With the dask executor and a per-symbol forecaster, each symbol is one task: its model
    predicts all of its rows (loading a Ludwig model is most of the cost) and its baselines
    are fitted on its own training rows, which per-symbol baselines use anyway.
    """
    if params.executor == "serial" or forecaster.scope == "pooled" or not selected:
        return {
            split: score_rows(forecaster, rows, params, baselines_from)
            for split, rows in selected.items()
        }
    stacked = pd.concat(selected.values(), keys=list(selected), names=["split", "row"])
    tasks = [
        Task(
            str(symbol),
            score_symbol,
            (forecaster.only(str(symbol)), rows, params, _of_symbol(baselines_from, symbol)),
        )
        for symbol, rows in stacked.groupby(C.SYMBOL, sort=True)
    ]
    with open_executor(params) as executor:
        answers = executor.run(tasks, "prediction")
    values = pd.concat(answers.values())
    return {
        split: values.xs(split, level="split").reindex(rows.index)
        for split, rows in selected.items()
    }


def _of_symbol(baselines_from: BaselinesFrom | None, symbol: Any) -> BaselinesFrom | None:
    if baselines_from is None:
        return None
    train, config = baselines_from
    return train[train[C.SYMBOL] == symbol], config


def score_symbol(
    forecaster: Forecaster,
    rows: pd.DataFrame,
    params: TrainingParams,
    baselines_from: BaselinesFrom | None,
) -> pd.DataFrame:
    """One symbol's rows of every split scored (a task), indexed as ``rows``. Each split is
    scored on its own, as the serial path does: Ludwig's float32 results depend slightly on
    the batch a row is in."""
    parts = []
    for _, part in rows.groupby(level="split", sort=False):
        scored = score_rows(forecaster, part.droplevel("split"), params, baselines_from)
        parts.append(scored.set_axis(part.index))
    return pd.concat(parts)


def score_rows(
    forecaster: Forecaster,
    rows: pd.DataFrame,
    params: TrainingParams,
    baselines_from: BaselinesFrom | None,
) -> pd.DataFrame:
    """The forecaster's ``prediction`` of each row and, with ``baselines_from``, each
    baseline's predicted close (see :func:`_predictions`)."""
    scored = pd.DataFrame({"prediction": _predicted(forecaster, rows)})
    if baselines_from is not None:
        train, config = baselines_from
        for name, close in baseline_closes(train, rows, config, params).items():
            scored[name] = close
    return scored


def baseline_closes(
    train: pd.DataFrame, rows: pd.DataFrame, config: dict[str, Any], params: TrainingParams
) -> dict[str, pd.Series]:
    """Each baseline's predicted close of ``rows``, fitted on ``train`` (the model's inputs and
    target from ``config``; per symbol or pooled as ``params.scope``)."""
    target, _ = output_feature(config)
    return {
        baselines.NAIVE: baselines.naive_last_close(rows),
        baselines.DRIFT: baselines.mean_drift(train, rows),
        baselines.RIDGE: baselines.ridge(
            train, rows, input_columns(config), target, params.ridge_alpha, params.scope
        ),
    }


def _predicted(forecaster: Forecaster, rows: pd.DataFrame) -> pd.Series:
    """The forecaster's ``prediction`` of each row, indexed as ``rows``."""
    return pd.Series(forecaster.predict(None, rows)["prediction"].to_numpy(), rows.index)


def compute_evaluation_metrics(
    evaluation_predictions: pd.DataFrame, features: pd.DataFrame, training_plan: TrainingPlan
) -> tuple[dict[str, Any] | Unchanged, dict[str, dict[str, float]]]:
    """Metrics computed from ``evaluation_predictions`` (and, for the scale of Hyndman's MASE,
    the realised returns in ``features`` before each fold's first evaluated date).

    Intervals of directional accuracy, its base rate and skill, and the IC come from a bootstrap
    over dates (all symbols of a day together); Wilson's interval stays as a secondary figure.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        features: The ``features`` dataset (only ``symbol, target_date, target_return_1d``).
        training_plan: This run's plan.

    Returns:
        ``evaluation_metrics``: model -> the holdout test metrics at the top level, plus
        ``validation`` and ``gate`` (the other holdout slices) and ``walk_forward`` (fold ->
        metrics); and the same figures flattened for MLflow (``<model>.<split>.<metric>``),
        with ``trials``: the configurations this training tried (one: no search ran).
    """
    if not training_plan.due:
        return UNCHANGED, {}
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


# ------------------------------------------------------------------------------------- gate
def score_champion_on_gate(
    champion_model: ModelHandle,
    features: pd.DataFrame,
    training_plan: TrainingPlan,
    params: TrainingParams,
) -> dict[str, Any]:
    """The current champion's next-session predictions on this run's gate rows.

    Only rows the champion neither fitted nor early-stopped on are scored: a champion whose
    validation period reaches into the gate slice is scored on the later rows only, and the
    decision says so. A per-symbol champion predicts as the evaluation does: with the dask
    executor, one task per symbol.

    Args:
        champion_model: The registry's champion (the naive forecaster until a model earns it).
        features: The ``features`` dataset.
        training_plan: This run's plan (its gate slice).
        params: ``params:training`` (its executor).

    Returns:
        ``version``, ``kind``, ``tags``, ``predictions`` (``symbol, date, prediction`` as closes;
        empty when the champion cannot score out of sample) and a ``note``.
    """
    info = {
        "version": champion_model.version,
        "kind": champion_model.kind,
        "tags": dict(champion_model.tags),
        "predictions": pd.DataFrame(columns=[C.SYMBOL, C.DATE, "prediction"]),
        "note": "",
    }
    if not training_plan.due:
        return info
    rows = _fold_parts(features, training_plan.fold)[GATE]
    seen_until = champion_model.tags.get("validation_end")
    if seen_until:
        after = rows[C.TARGET_DATE] > pd.Timestamp(seen_until)
        if not after.all():
            info["note"] = (
                f"the champion {champion_model.version} early-stopped on rows up to {seen_until}: "
                f"{int((~after).sum())} gate rows on or before it are not used for it"
            )
            rows = rows[after]
    if rows.empty:
        return info
    champion = champion_model.load().unwrap_python_model()
    if champion.scope != "pooled":
        rows = rows[rows[C.SYMBOL].isin(champion.symbols)]
        if rows.empty:
            return info
    raw = _predictions(champion, {GATE: rows}, params)[GATE]["prediction"].astype(float)
    close = implied_close(champion.output_name, raw, rows[C.CLOSE])
    info["predictions"] = pd.DataFrame(
        {
            C.SYMBOL: rows[C.SYMBOL].to_numpy(),
            C.DATE: rows[C.TARGET_DATE].to_numpy(),
            "prediction": close.to_numpy(dtype=float),
        }
    )
    return info


def decide_promotion(
    evaluation_predictions: pd.DataFrame,
    champion_on_gate: dict[str, Any],
    registered_forecaster: dict[str, Any],
    params: TrainingParams,
    training_plan: TrainingPlan,
) -> tuple[dict[str, Any] | Unchanged, dict[str, dict[str, float]]]:
    """Promotes the candidate only if it beats the naive forecaster and the champion, clearly.

    On the gate slice (rows that neither fitted nor early-stopped the candidate), each benchmark
    is compared with the candidate on the same (symbol, date) rows by the loss
    ``|predicted return - realised return|``: the candidate must lower the mean loss by at least
    ``promotion.min_improvement`` and a one-sided test on the per-date loss differential must
    give a p-value of at most ``promotion.max_p_value``.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset (its gate split).
        champion_on_gate: The champion's predictions on the gate rows.
        registered_forecaster: The version this run registered (``name``, ``version``).
        params: ``params:training`` (its ``promotion`` section).
        training_plan: This run's plan.

    Returns:
        The ``promotion_decision`` report (the tests with their statistic, p-value, rows and
        dates) and its figures as MLflow metrics.
    """
    if not training_plan.due:
        return UNCHANGED, {}
    promotion = params.promotion
    gate = evaluation_predictions[
        (evaluation_predictions["fold"] == HOLDOUT) & (evaluation_predictions["split"] == GATE)
    ]
    candidate = gate[gate["model"] == TEAM_MODEL]
    benchmarks = {NAIVE_MODEL: gate[gate["model"] == baselines.NAIVE]}
    champion_is_naive = champion_on_gate["kind"] == NAIVE_MODEL
    if not champion_is_naive:
        benchmarks["champion"] = champion_on_gate["predictions"]
    tests = [
        _compare(name, candidate, rows, promotion, training_plan)
        for name, rows in benchmarks.items()
    ]
    reasons = [t["verdict"] for t in tests if not t["passed"]]
    promote = not reasons
    decision = {
        "model_name": registered_forecaster.get("name"),
        "candidate_version": registered_forecaster.get("version"),
        "promote": promote,
        "run_date": str(training_plan.run_date.date()),
        "champion_version": champion_on_gate["version"],
        "champion_kind": champion_on_gate["kind"],
        "gate": {
            "start": _iso(gate[C.DATE].min()),
            "end": _iso(gate[C.DATE].max()),
            **{k: v for k, v in training_plan.fold.describe().items() if k == "gate_end"},
        },
        "test": promotion.test,
        "max_p_value": promotion.max_p_value,
        "min_improvement": promotion.min_improvement,
        "comparisons": tests,
        "note": champion_on_gate.get("note", ""),
        "reason": (
            "beats the naive forecaster"
            + ("" if champion_is_naive else " and the champion")
            + " on the gate slice, significantly"
            if promote
            else "; ".join(reasons)
        ),
    }
    metrics = {"gate.promote": {"value": float(promote), "step": 0}}
    for test in tests:
        for key in ("improvement", "statistic", "p_value", "rows", "dates"):
            value = test.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                metrics[f"gate.{test['against']}.{key}"] = {"value": float(value), "step": 0}
    logger.info("promotion decision: %s (%s)", promote, decision["reason"])
    return decision, metrics


def _compare(
    against: str,
    candidate: pd.DataFrame,
    benchmark: pd.DataFrame,
    promotion: Any,
    training_plan: TrainingPlan,
) -> dict[str, Any]:
    """One gate comparison of the candidate with a benchmark on their common rows."""
    keys = [C.SYMBOL, C.DATE]
    both = candidate.merge(
        benchmark[[*keys, "prediction"]].rename(columns={"prediction": "benchmark"}),
        on=keys,
        how="inner",
    ).dropna(subset=["prediction", "benchmark", "actual", "last_close"])
    actual = both["actual"] / both["last_close"] - 1
    candidate_loss = (both["prediction"] / both["last_close"] - 1 - actual).abs()
    benchmark_loss = (both["benchmark"] / both["last_close"] - 1 - actual).abs()
    differential = forecast_tests.daily_loss_differential(
        candidate_loss, benchmark_loss, both[C.DATE]
    )
    result: dict[str, Any] = {
        "against": against,
        "rows": float(len(both)),
        "dates": float(len(differential)),
        "first_date": _iso(both[C.DATE].min()),
        "last_date": _iso(both[C.DATE].max()),
        "candidate_mae_return": float(candidate_loss.mean()) if len(both) else None,
        "benchmark_mae_return": float(benchmark_loss.mean()) if len(both) else None,
    }
    if len(differential) < promotion.min_gate_dates:
        return {
            **result,
            "passed": False,
            "verdict": (
                f"only {len(differential)} gate dates to compare with {against} (at least "
                f"{promotion.min_gate_dates} needed): no decision can be made"
            ),
        }
    if promotion.test == "block_bootstrap":
        seed = int(training_plan.run_date.strftime("%Y%m%d"))
        test = forecast_tests.bootstrap_mean_test(differential, promotion.bootstrap_samples, seed)
    else:
        test = forecast_tests.diebold_mariano(differential)
    improvement = 1 - result["candidate_mae_return"] / result["benchmark_mae_return"]
    p_value = test["p_value"]
    passed = (
        improvement > promotion.min_improvement
        and math.isfinite(p_value)
        and p_value <= promotion.max_p_value
    )
    if passed:
        verdict = f"beats {against}"
    elif not improvement > promotion.min_improvement:
        verdict = (
            f"MAE on return {result['candidate_mae_return']:.6f} does not beat {against} "
            f"({result['benchmark_mae_return']:.6f}) by more than "
            f"{promotion.min_improvement:.1%} on the gate slice"
        )
    else:
        verdict = (
            f"lower MAE on return than {against} ({improvement:.2%}) but not significantly: "
            f"p = {p_value:.3f} > {promotion.max_p_value}"
        )
    return {
        **result,
        "improvement": float(improvement),
        "statistic": test["statistic"],
        "p_value": p_value,
        "passed": bool(passed),
        "verdict": verdict,
    }


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else str(pd.Timestamp(value).date())


def request_alias_update(
    promotion_decision: dict[str, Any], training_plan: TrainingPlan
) -> AliasUpdate | Unchanged:
    """The promotion decision as an instruction for the registry's champion alias.

    Args:
        promotion_decision: The ``promotion_decision`` report.
        training_plan: This run's plan.

    Returns:
        Tag the candidate version with the decision; move the alias only when promoted.
    """
    if not training_plan.due:
        return UNCHANGED
    return AliasUpdate(
        candidate_version=str(promotion_decision["candidate_version"]),
        promote=bool(promotion_decision["promote"]),
        reason=str(promotion_decision["reason"]),
    )


def record_training(
    training_plan: TrainingPlan,
    promotion_decision: dict[str, Any],
    champion_on_gate: dict[str, Any],
    run_info: dict[str, str],
) -> tuple[pd.DataFrame, dict[str, Any] | Unchanged]:
    """The row this training adds to ``training_history`` and the ``deployed_model_card``.

    Args:
        training_plan: This run's plan.
        promotion_decision: The decision just made.
        champion_on_gate: What is known of the champion before the decision.
        run_info: The run's identity and start time.

    Returns:
        The history row (none on a day without training) and the card of the model now in
        service: its kind, version and the window it was trained on (for the naive forecaster,
        which learns nothing, the window the last candidate was trained on, as monitoring's
        reference).
    """
    if not training_plan.due:
        return pd.DataFrame(columns=HISTORY_COLUMNS), UNCHANGED
    window = training_plan.fold.describe()
    promoted = bool(promotion_decision["promote"])
    candidate = promotion_decision.get("candidate_version")
    champion = (
        f"{promotion_decision.get('model_name')}/{candidate}"
        if promoted
        else champion_on_gate["version"]
    )
    row = {
        "run_date": training_plan.run_date,
        "run_id": run_info["run_id"],
        "reason": training_plan.reason,
        "ludwig_config_sha256": training_plan.ludwig_config_sha256,
        "training_params_sha256": training_plan.training_params_sha256,
        "candidate_version": str(candidate),
        "promoted": promoted,
        "champion_version": champion,
        **window,
        "trained_at": pd.Timestamp(run_info["started_at"]),
    }
    if promoted or champion_on_gate["kind"] != NAIVE_MODEL:
        source = window if promoted else champion_on_gate["tags"]
        kind = LUDWIG_MODEL
    else:
        source, kind = window, NAIVE_MODEL
    card = {
        "version": champion,
        "kind": kind,
        "decided_on": str(training_plan.run_date.date()),
        "train_start": source.get("train_start"),
        "train_end": source.get("train_end"),
        "validation_end": source.get("validation_end"),
        "gate_end": source.get("gate_end"),
        "reference_note": (
            "the naive forecaster learns nothing: this is the window the last candidate was "
            "trained on"
            if kind == NAIVE_MODEL
            else "the window the model in service was trained on"
        ),
    }
    return pd.DataFrame([row], columns=HISTORY_COLUMNS), card
