"""Whether this run trains, and on which slices: the training plan every training node follows.

A run trains when asked to (``kedro run --pipelines training``) or, in the daily loop, when the
retrain policy says so: the first run in a storage root, every ``training.retrain.every_sessions``
sessions, the run after monitoring raised an alert, or when the team changed its Ludwig config or
its training parameters. On the other days the daily loop reuses the champion and every training
node returns :data:`~stock_mlops.core.vocabulary.UNCHANGED`, so nothing stored changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.params import TrainingParams
from stock_mlops.pipelines.training.splits import Fold, fixed_fold, labelled_rows, window_fold

# Columns of the `training_history` log (one row per run that trained).
HISTORY_COLUMNS = [
    "run_date",
    "run_id",
    "reason",
    "ludwig_config_sha256",
    "training_params_sha256",
    "candidate_version",
    "promoted",
    "champion_version",
    "train_start",
    "train_end",
    "validation_end",
    "gate_end",
    "test_end",
    "trained_at",
]


@dataclass(frozen=True)
class TrainingPlan:
    """What a run does in the training pipeline."""

    due: bool
    reason: str
    run_date: pd.Timestamp
    fold: Fold
    ludwig_config_sha256: str
    training_params_sha256: str


def config_hash(ludwig_config: dict[str, Any]) -> str:
    """A stable hash of a Ludwig config (key order does not matter)."""
    text = json.dumps(ludwig_config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def params_hash(params: TrainingParams) -> str:
    """A hash of the training parameters that change what is trained (not the retrain policy)."""
    relevant = params.model_dump(mode="json", exclude={"retrain"})
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def holdout_fold(features: pd.DataFrame, params: TrainingParams, as_of: pd.Timestamp) -> Fold:
    """The fold the deployed model is trained and judged on, as of ``as_of``."""
    if params.window is None:
        return fixed_fold(params.split)
    labelled = labelled_rows(features)
    if labelled.empty:
        raise ValueError("no labelled rows to train on: features hold no next-session target")
    newest = min(pd.Timestamp(as_of), pd.Timestamp(labelled[C.TARGET_DATE].max()))
    return window_fold(params.window, newest, pd.Timestamp(labelled[C.TARGET_DATE].min()))


def retrain_reason(
    as_of: pd.Timestamp,
    config_sha256: str,
    training_sha256: str,
    params: TrainingParams,
    history: pd.DataFrame,
    alert: dict[str, Any] | None,
) -> str | None:
    """Why the daily loop must train today, or None when it reuses the champion.

    Args:
        as_of: The run date.
        config_sha256: Hash of today's Ludwig config.
        training_sha256: Hash of today's training parameters.
        params: ``params:training`` (its retrain policy).
        history: The ``training_history`` log before this run.
        alert: The last monitoring alert before this run (``monitoring_alert``), or None.
    """
    if history.empty:
        return "the first training in this storage root"
    history = history.assign(run_date=pd.to_datetime(history["run_date"]))
    last = history.sort_values("run_date", kind="stable").iloc[-1]
    last_date = pd.Timestamp(last["run_date"])
    if as_of <= last_date:  # trained today already (or replaying an earlier day)
        return None
    elapsed = len(calendar.sessions_between(last_date + pd.Timedelta(days=1), as_of))
    alert_date = pd.Timestamp((alert or {}).get("run_date") or as_of)
    checks = [
        (last["ludwig_config_sha256"] != config_sha256, "the Ludwig config changed"),
        (last["training_params_sha256"] != training_sha256, "the training parameters changed"),
        (
            elapsed >= params.retrain.every_sessions,
            f"{elapsed} sessions since the last training on {last_date.date()} "
            f"(every_sessions={params.retrain.every_sessions})",
        ),
        (
            params.retrain.on_monitoring_alert
            and bool((alert or {}).get("alert"))
            and alert_date > last_date
            and elapsed >= params.retrain.alert_cooldown_sessions,
            f"monitoring raised an alert on {alert_date.date()} and the model trained on "
            f"{last_date.date()} has served {elapsed} sessions "
            f"(alert_cooldown_sessions={params.retrain.alert_cooldown_sessions})",
        ),
    ]
    return next((reason for due, reason in checks if due), None)
