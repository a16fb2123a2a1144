"""Nodes of the monitoring pipeline: feature drift and predictions against what happened.

Everything is as of the run date (``params:run_date``, default the newest feature date): the
current window is the newest ``current_sessions`` up to it.

* Drift is measured on the features whose kind (declared by the feature registry, read from
  ``feature_kinds``) is in ``monitoring.drift.feature_kinds``, against the deployed model's
  training window (``deployed_model_card``); without a known window, against the
  ``reference_sessions`` before the current window (the page and the summary say which).
* Prediction quality joins every prediction with the close that really followed, by symbol and
  *date* (never by row position, the predecessor's mistake), and compares the current window with
  the model's validation period, beside the no-change forecast and the always-up base rate.
* The reports' tests become ``monitoring_alert``; the reports go to the page and, as snapshots
  dated by the run date, to the team's evidently workspace.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.monitoring import MonitoringRun
from stock_mlops.core.outcomes import as_of_date, join_realised_closes, team_model_rows
from stock_mlops.core.params import MonitoringParams
from stock_mlops.core.vocabulary import VALIDATION
from stock_mlops.pipelines.monitoring import reports
from stock_mlops.pipelines.monitoring.page import monitoring_page

logger = logging.getLogger(__name__)

OUTCOME_COLUMNS = [
    C.SYMBOL,
    C.DATE,
    "origin",
    "predicted_return",
    "actual_return",
    "predicted_close",
    "actual_close",
]
TRAINING_WINDOW = "training_window"
SESSIONS_BEFORE = "sessions_before_current"


def monitoring_date(features: pd.DataFrame, run_date: str | None) -> str:
    """The date the run describes: ``run_date``, else the newest feature date.

    Args:
        features: The ``features`` dataset.
        run_date: ``params:run_date``.

    Returns:
        The date as ``YYYY-MM-DD``.

    Raises:
        ValueError: When ``run_date`` is before every feature date.
    """
    as_of = as_of_date(run_date, features[C.DATE])
    first = pd.Timestamp(features[C.DATE].min())
    if as_of < first:
        raise ValueError(
            f"run_date {as_of.date()} is before the first feature date {first.date()}: "
            "nothing to monitor"
        )
    return as_of.date().isoformat()


def drift_windows(
    features: pd.DataFrame,
    feature_kinds: dict[str, str],
    deployed_model_card: dict[str, Any] | None,
    params: MonitoringParams,
    as_of: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The reference and current windows of the monitored features, and what they are.

    Args:
        features: The ``features`` dataset.
        feature_kinds: Feature column -> kind (the ``feature_kinds`` dataset).
        deployed_model_card: The deployed model's card (``train_start``, ``train_end``: ISO
            dates or null), or None before the training pipeline has written one.
        params: ``params:monitoring``.
        as_of: The run date.

    Returns:
        ``(reference, current, description)``; both frames hold ``symbol``, ``date`` and the
        monitored columns; the description names the columns, the windows and where the
        reference comes from.

    Raises:
        ValueError: When no feature has a monitored kind, the card holds a date that is not
            one, or the features hold too few sessions for the windows.
    """
    columns = [
        c
        for c in features.columns
        if feature_kinds.get(c) in params.drift.feature_kinds
        and pd.api.types.is_numeric_dtype(features[c])
    ]
    if not columns:
        raise ValueError(
            f"no feature column has a kind in monitoring.drift.feature_kinds "
            f"{list(params.drift.feature_kinds)}; the features' kinds are "
            f"{sorted(set(feature_kinds.values()))}"
        )
    known = features[features[C.DATE] <= pd.Timestamp(as_of)]
    dates = pd.Index(sorted(known[C.DATE].unique()))
    current_start = dates[-min(params.current_sessions, len(dates))]
    before = dates[dates < current_start]
    train_start, train_end = _training_window(deployed_model_card)
    reference_dates, source, note = None, SESSIONS_BEFORE, ""
    if train_end is None:
        note = (
            "no deployed model card yet"
            if deployed_model_card is None
            else "the deployed model card gives no training end"
        )
    else:
        trained = before[(before >= (train_start or before.min())) & (before <= train_end)]
        if len(trained) >= params.current_sessions:
            reference_dates, source = trained, TRAINING_WINDOW
            note = (
                f"the deployed model's training window "
                f"({_iso(train_start) or 'first session'} to {_iso(train_end)})"
            )
            if train_end >= current_start:
                note += ", up to the current window"
        else:
            note = (
                f"the deployed model's training window ({_iso(train_start) or 'first session'} "
                f"to {_iso(train_end)}) has {len(trained)} sessions before the current window, "
                f"fewer than monitoring.current_sessions ({params.current_sessions})"
            )
    if reference_dates is None:
        needed = params.current_sessions + params.reference_sessions
        if len(dates) < needed:
            raise ValueError(
                f"monitoring needs {needed} sessions of features up to {as_of}, found "
                f"{len(dates)}; lower monitoring.current_sessions or "
                "monitoring.reference_sessions"
            )
        reference_dates = before[-params.reference_sessions :]
        note = f"{note}: the {params.reference_sessions} sessions before the current window"
    frame = [C.SYMBOL, C.DATE, *columns]
    reference = known[known[C.DATE].isin(reference_dates)][frame].reset_index(drop=True)
    current = known[known[C.DATE] >= current_start][frame].reset_index(drop=True)
    description = {
        "run_date": as_of,
        "columns": columns,
        "kinds": {c: feature_kinds[c] for c in columns},
        "reference_source": source,
        "reference_note": note,
        "reference": _window(reference),
        "current": _window(current),
    }
    logger.info("monitoring drift on %s; reference: %s", columns, note)
    return reference, current, description


def _training_window(card: dict[str, Any] | None) -> tuple[pd.Timestamp | None, ...]:
    if card is None:
        return None, None
    window = []
    for key in ("train_start", "train_end"):
        value = card.get(key)
        try:
            window.append(pd.Timestamp(dt.date.fromisoformat(str(value))) if value else None)
        except ValueError:
            raise ValueError(
                f"deployed_model_card.{key} must be an ISO date (YYYY-MM-DD) or null, got {value!r}"
            ) from None
    return tuple(window)


def _iso(day: pd.Timestamp | None) -> str | None:
    return day.date().isoformat() if day is not None else None


def _window(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "start": _iso(frame[C.DATE].min()) if len(frame) else None,
        "end": _iso(frame[C.DATE].max()) if len(frame) else None,
        "sessions": int(frame[C.DATE].nunique()),
        "rows": len(frame),
    }


def prediction_outcomes(
    evaluation_predictions: pd.DataFrame,
    predictions: pd.DataFrame,
    prices: pd.DataFrame,
    team: str,
) -> pd.DataFrame:
    """Every prediction whose outcome is known: out-of-sample evaluation rows of the team's
    model and the live prediction log, joined to realised closes by symbol and target date.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        predictions: The ``predictions`` log.
        prices: The ``prices`` dataset (the realised closes).
        team: ``params:team``.

    Returns:
        The ``prediction_outcomes`` table: one row per symbol and target date, with the
        predicted and realised returns and next-session closes.
    """
    oos = team_model_rows(evaluation_predictions)
    frames = [
        pd.DataFrame(
            {
                C.SYMBOL: oos[C.SYMBOL],
                C.DATE: pd.to_datetime(oos[C.DATE]),
                "origin": "out_of_sample_" + oos["split"],
                "predicted_return": oos["prediction"] / oos["last_close"] - 1,
                "actual_return": oos["actual"] / oos["last_close"] - 1,
                "predicted_close": oos["prediction"],
                "actual_close": oos["actual"],
            }
        )
    ]
    live = predictions[predictions["team"] == team]
    if len(live):
        joined = join_realised_closes(live, prices)
        frames.append(
            pd.DataFrame(
                {
                    C.SYMBOL: joined[C.SYMBOL],
                    C.DATE: joined[C.TARGET_DATE],
                    "origin": "live",
                    "predicted_return": joined["predicted_return"],
                    "actual_return": joined["actual"] / joined["last_close"] - 1,
                    "predicted_close": joined["prediction"],
                    "actual_close": joined["actual"],
                }
            )
        )
    outcomes = pd.concat(frames, ignore_index=True)[OUTCOME_COLUMNS]
    # A live prediction for a date already covered out of sample is the same question twice.
    outcomes = outcomes.drop_duplicates([C.SYMBOL, C.DATE], keep="last")
    outcomes = outcomes.dropna(subset=["predicted_return", "actual_return"])
    return outcomes.sort_values([C.DATE, C.SYMBOL]).reset_index(drop=True)


def quality_windows(
    outcomes: pd.DataFrame, params: MonitoringParams, as_of: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Reference: the validation period; current: the newest ``current_sessions`` outcome
    dates up to the run date.

    Args:
        outcomes: The ``prediction_outcomes`` table.
        params: ``params:monitoring``.
        as_of: The run date.

    Returns:
        ``(reference, current, description)`` (the frames are outcome rows).

    Raises:
        ValueError: When no outcome is known up to the run date.
    """
    outcomes = outcomes.assign(**{C.DATE: pd.to_datetime(outcomes[C.DATE])})
    known = outcomes[outcomes[C.DATE] <= pd.Timestamp(as_of)]
    if known.empty:
        raise ValueError(
            f"no prediction outcome is known up to {as_of}: run the training pipeline first "
            "(its out-of-sample predictions are the first outcomes)"
        )
    dates = pd.Index(sorted(known[C.DATE].unique()))
    current_start = dates[-min(params.current_sessions, len(dates))]
    current = known[known[C.DATE] >= current_start]
    earlier = known[known[C.DATE] < current_start]
    reference = earlier[earlier["origin"] == f"out_of_sample_{VALIDATION}"]
    source = "the model's validation period"
    if reference.empty:
        reference, source = earlier, "every earlier outcome (no validation rows before)"
    description = {
        "run_date": as_of,
        "reference_note": source,
        "reference": _window(reference),
        "current": _window(current),
    }
    return reference.reset_index(drop=True), current.reset_index(drop=True), description


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift_window: dict[str, Any],
    params: MonitoringParams,
    team: str,
) -> Any:
    """evidently's drift report of the current window against the reference one.

    Args:
        reference: Reference window (from :func:`drift_windows`).
        current: Current window.
        drift_window: The windows' description.
        params: ``params:monitoring``.
        team: ``params:team``.

    Returns:
        The evidently snapshot (timestamped by the run date).
    """
    return reports.run_drift_report(
        reference,
        current,
        drift_window["columns"],
        method=params.drift.method,
        threshold=params.drift.threshold,
        max_share=params.drift.max_share,
        run_date=dt.date.fromisoformat(drift_window["run_date"]),
        metadata={"team": team, "run_date": drift_window["run_date"], "kind": "drift"},
    )


def quality_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    quality_window: dict[str, Any],
    params: MonitoringParams,
    team: str,
) -> Any:
    """evidently's report of predicted against realised next-session returns (in percent).

    The MAE test's limit is ``max_mae_ratio_to_naive`` times the no-change forecast's MAE on the
    current rows; the directional test's is the always-up base rate of the current rows minus
    ``direction_tolerance``. Both are computed here, so the page shows plain numbers.

    Args:
        reference: Reference outcomes (from :func:`quality_windows`).
        current: Current outcomes.
        quality_window: The windows' description.
        params: ``params:monitoring``.
        team: ``params:team``.

    Returns:
        The evidently snapshot (timestamped by the run date).
    """
    current_frame = reports.quality_frame(current)
    naive_mae = float(current_frame[reports.NAIVE_ERROR].mean())
    base_rate = float(current_frame[reports.ALWAYS_UP_CORRECT].mean())
    return reports.run_quality_report(
        reports.quality_frame(reference),
        current_frame,
        max_mae=naive_mae * params.quality.max_mae_ratio_to_naive,
        min_direction=max(0.0, base_rate - params.quality.direction_tolerance),
        run_date=dt.date.fromisoformat(quality_window["run_date"]),
        metadata={"team": team, "run_date": quality_window["run_date"], "kind": "quality"},
    )


def monitoring_alert(
    drift_snapshot: Any, quality_snapshot: Any, drift_window: dict[str, Any], team: str
) -> dict[str, Any]:
    """The tests of both reports, and whether any critical one failed.

    Args:
        drift_snapshot: The drift report.
        quality_snapshot: The quality report.
        drift_window: The drift windows' description.
        team: ``params:team``.

    Returns:
        The ``monitoring_alert`` document: ``alert`` (true when a critical check failed or
        could not be computed), ``run_date``, ``team``, ``failed`` (the critical checks that
        did not pass), ``tests`` (one entry per evidently test) and ``drift_reference``.
    """
    tests = reports.checks(drift_snapshot) + reports.checks(quality_snapshot)
    failed = [t["name"] for t in tests if t["critical"] and t["status"] != "SUCCESS"]
    if failed:
        logger.warning("monitoring alert for %s on %s: %s", team, drift_window["run_date"], failed)
    return {
        "alert": bool(failed),
        "run_date": drift_window["run_date"],
        "team": team,
        "failed": failed,
        "tests": tests,
        "drift_reference": {
            "source": drift_window["reference_source"],
            "note": drift_window["reference_note"],
            **drift_window["reference"],
        },
    }


def summarise_monitoring(
    drift_snapshot: Any,
    quality_snapshot: Any,
    monitoring_alert: dict[str, Any],
    drift_window: dict[str, Any],
    quality_window: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The headline figures of both reports, and the same figures as MLflow metrics.

    Args:
        drift_snapshot: The drift report.
        quality_snapshot: The quality report.
        monitoring_alert: The alert document.
        drift_window: The drift windows' description.
        quality_window: The quality windows' description.

    Returns:
        The ``monitoring_summary`` document and ``monitoring_metrics_mlflow`` (logged with the
        prefix ``monitoring.``: ``drift_share``, ``mae_return``, ``directional_accuracy``, ...).
    """
    drift = reports.metric_values(drift_snapshot)
    quality = reports.metric_values(quality_snapshot)
    drifted = drift.get("DriftedColumnsCount", {"count": math.nan, "share": math.nan})
    figures = {
        "drift_share": float(drifted["share"]),
        "drifted_features": float(drifted["count"]),
        "monitored_features": float(len(drift_window["columns"])),
        # Percent in the report, a fraction here (as mae_return in evaluation_metrics).
        "mae_return": quality["MAE"]["mean"] / 100,
        "naive_mae_return": quality[f"MeanValue:{reports.NAIVE_ERROR}"] / 100,
        "mean_error_return": quality["MeanError"]["mean"] / 100,
        "rmse_return": quality["RMSE"] / 100,
        "directional_accuracy": float(quality[f"MeanValue:{reports.DIRECTION_CORRECT}"]),
        "always_up_rate": float(quality[f"MeanValue:{reports.ALWAYS_UP_CORRECT}"]),
        "alert": float(monitoring_alert["alert"]),
    }
    figures["mae_ratio_to_naive"] = (
        figures["mae_return"] / figures["naive_mae_return"]
        if figures["naive_mae_return"]
        else math.nan
    )
    summary = {
        "run_date": drift_window["run_date"],
        **figures,
        "alert": monitoring_alert["alert"],
        "failed": monitoring_alert["failed"],
        "drift_columns": drift_window["columns"],
        "drift_reference": drift_window["reference_note"],
        "drift_windows": {
            "reference": drift_window["reference"],
            "current": drift_window["current"],
        },
        "quality_reference": quality_window["reference_note"],
        "quality_windows": {
            "reference": quality_window["reference"],
            "current": quality_window["current"],
        },
    }
    metrics = {
        name: {"value": float(value), "step": 0}
        for name, value in figures.items()
        if math.isfinite(value)
    }
    logger.info("monitoring: %s", figures)
    return summary, metrics


def render_monitoring_report(
    drift_snapshot: Any,
    quality_snapshot: Any,
    monitoring_alert: dict[str, Any],
    drift_window: dict[str, Any],
    quality_window: dict[str, Any],
    team: str,
) -> str:
    """The monitoring page: the checks, the windows and both evidently reports.

    Args:
        drift_snapshot: The drift report.
        quality_snapshot: The quality report.
        monitoring_alert: The alert document.
        drift_window: The drift windows' description.
        quality_window: The quality windows' description.
        team: ``params:team``.

    Returns:
        The HTML page (self-contained: it opens from disk, offline).
    """
    windows = [
        {"window": "drift: current", **drift_window["current"], "source": "newest sessions"},
        {
            "window": "drift: reference",
            **drift_window["reference"],
            "source": drift_window["reference_note"],
        },
        {"window": "quality: current", **quality_window["current"], "source": "newest outcomes"},
        {
            "window": "quality: reference",
            **quality_window["reference"],
            "source": quality_window["reference_note"],
        },
    ]
    columns = ", ".join(f"{c} ({k})" for c, k in drift_window["kinds"].items())
    return monitoring_page(
        team=team,
        run_date=drift_window["run_date"],
        alert=monitoring_alert,
        windows=windows,
        drift_note=(f"Monitored features: {columns}. Reference: {drift_window['reference_note']}."),
        quality_note=(
            "Next-session returns in percent, predicted against realised, current window "
            f"against {quality_window['reference_note']}. Beside the model: the no-change "
            f"forecast's absolute error ({reports.NAIVE_ERROR}) and the always-up hit rate "
            f"({reports.ALWAYS_UP_CORRECT}); {reports.DIRECTION_CORRECT} is the directional "
            "accuracy (sessions without a move are not calls)."
        ),
        drift_html=reports.report_html(drift_snapshot),
        quality_html=reports.report_html(quality_snapshot),
    )


def workspace_run(
    drift_snapshot: Any, quality_snapshot: Any, drift_window: dict[str, Any], team: str
) -> MonitoringRun:
    """Both reports as one run of the team's evidently project, dated by the run date.

    Args:
        drift_snapshot: The drift report.
        quality_snapshot: The quality report.
        drift_window: The drift windows' description (its run date).
        team: ``params:team``.

    Returns:
        The request the ``monitoring_workspace`` dataset stores.
    """
    return MonitoringRun(
        project=team,
        run_date=dt.date.fromisoformat(drift_window["run_date"]),
        snapshots={"drift": drift_snapshot, "quality": quality_snapshot},
        dashboard=reports.dashboard(),
        description=f"stock-mlops monitoring of team {team}: one drift and one quality "
        "report per run date",
    )
