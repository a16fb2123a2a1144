"""Nodes of the monitoring pipeline: feature drift and predictions against what happened.

Drift compares the newest ``current_sessions`` of features with the ``reference_sessions``
before them. Prediction quality joins every prediction with the close that really followed, by
symbol and *date* (never by row position, the predecessor's mistake), and compares the recent
window with the model's validation period.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.outcomes import join_realised_closes, team_model_rows
from stock_mlops.core.params import MonitoringParams

logger = logging.getLogger(__name__)

QUALITY_COLUMNS = [C.SYMBOL, C.DATE, "origin", "predicted_return", "actual_return"]


def drift_windows(
    features: pd.DataFrame, params: MonitoringParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current windows of numeric feature columns.

    Args:
        features: The ``features`` dataset.
        params: ``params:monitoring``.

    Returns:
        ``(reference, current)``.

    Raises:
        ValueError: When the features hold fewer sessions than the two windows need.
    """
    dates = pd.Index(sorted(features[C.DATE].unique()))
    needed = params.current_sessions + params.reference_sessions
    if len(dates) < needed:
        raise ValueError(
            f"monitoring needs {needed} sessions of features, found {len(dates)}; lower "
            "monitoring.current_sessions or monitoring.reference_sessions"
        )
    current_start = dates[-params.current_sessions]
    reference_start = dates[-needed]
    columns = _drift_columns(features)
    reference = features[(features[C.DATE] >= reference_start) & (features[C.DATE] < current_start)]
    current = features[features[C.DATE] >= current_start]
    return reference[columns].reset_index(drop=True), current[columns].reset_index(drop=True)


def _drift_columns(features: pd.DataFrame) -> list[str]:
    skip = {C.SYMBOL, C.DATE, C.TARGET_DATE, *C.TARGETS}
    return [
        c for c in features.columns if c not in skip and pd.api.types.is_numeric_dtype(features[c])
    ]


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
        The ``prediction_outcomes`` table: one row per symbol and target date.
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
                }
            )
        )
    outcomes = pd.concat(frames, ignore_index=True)[QUALITY_COLUMNS]
    # A live prediction for a date already covered out of sample is the same question twice.
    outcomes = outcomes.drop_duplicates([C.SYMBOL, C.DATE], keep="last")
    return outcomes.dropna(subset=["predicted_return", "actual_return"]).reset_index(drop=True)


def quality_windows(
    outcomes: pd.DataFrame, params: MonitoringParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference: the validation period; current: the newest ``current_sessions`` outcomes.

    Args:
        outcomes: The ``prediction_outcomes`` table.
        params: ``params:monitoring``.

    Returns:
        ``(reference, current)``.
    """
    dates = pd.Index(sorted(outcomes[C.DATE].unique()))
    recent = outcomes[outcomes[C.DATE] >= dates[-min(params.current_sessions, len(dates))]]
    reference = outcomes[outcomes["origin"] == "out_of_sample_validation"]
    if reference.empty:
        reference = outcomes[~outcomes.index.isin(recent.index)]
    return reference.reset_index(drop=True), recent.reset_index(drop=True)


def drift_report(reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    """evidently's data-drift report of the current window against the reference one.

    Args:
        reference: Reference window of feature columns.
        current: Current window of the same columns.

    Returns:
        The evidently snapshot.
    """
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415 - 5 s import
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    definition = DataDefinition(numerical_columns=list(reference.columns))
    return Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def quality_report(reference: pd.DataFrame, current: pd.DataFrame) -> Any:
    """evidently's regression report of predicted against realised next-day returns.

    Args:
        reference: Reference outcomes (the validation period).
        current: The newest outcomes.

    Returns:
        The evidently snapshot.
    """
    from evidently import DataDefinition, Dataset, Regression, Report  # noqa: PLC0415
    from evidently.presets import RegressionPreset  # noqa: PLC0415

    columns = ["predicted_return", "actual_return"]
    definition = DataDefinition(
        numerical_columns=columns,
        regression=[Regression(target="actual_return", prediction="predicted_return")],
    )
    return Report([RegressionPreset()]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def summarise_monitoring(
    drift_snapshot: Any,
    drift_reference: pd.DataFrame,
    quality_reference: pd.DataFrame,
    quality_current: pd.DataFrame,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The headline figures of both reports, also as MLflow metrics.

    Args:
        drift_snapshot: The drift report.
        drift_reference: The reference window (its columns are the ones tested for drift).
        quality_reference: Reference outcomes.
        quality_current: The newest outcomes.

    Returns:
        The ``monitoring_summary`` document and the same figures as MLflow metrics.
    """
    summary = _summary(
        drift_snapshot.dict(), quality_current, quality_reference, len(drift_reference.columns)
    )
    metrics = {
        f"monitoring.{k}": {"value": float(v), "step": 0}
        for k, v in summary.items()
        if isinstance(v, int | float) and math.isfinite(v)
    }
    logger.info("monitoring: %s", summary)
    return summary, metrics


def render_monitoring_report(
    drift_snapshot: Any, quality_snapshot: Any, monitoring_summary: dict[str, Any], team: str
) -> str:
    """The monitoring page: the summary table and both evidently reports.

    Args:
        drift_snapshot: The drift report.
        quality_snapshot: The regression report.
        monitoring_summary: The headline figures.
        team: ``params:team``.

    Returns:
        The HTML page.
    """
    return _page(
        team,
        monitoring_summary,
        drift_snapshot.get_html_str(as_iframe=True),
        quality_snapshot.get_html_str(as_iframe=True),
    )


def _summary(
    drift: dict[str, Any], current: pd.DataFrame, reference: pd.DataFrame, n_columns: int
) -> dict[str, Any]:
    drifted = next(
        (
            m["value"]
            for m in drift["metrics"]
            if m["metric_name"].startswith("DriftedColumnsCount")
        ),
        {"count": math.nan, "share": math.nan},
    )

    def mae(frame: pd.DataFrame) -> float:
        return float((frame["predicted_return"] - frame["actual_return"]).abs().mean())

    return {
        "drift_columns": n_columns,
        "drifted_columns": float(drifted["count"]),
        "drifted_share": float(drifted["share"]),
        "current_rows": len(current),
        "reference_rows": len(reference),
        "current_mae_return": mae(current),
        "reference_mae_return": mae(reference),
        "current_window": f"{current[C.DATE].min().date()}..{current[C.DATE].max().date()}",
    }


def _page(team: str, summary: dict[str, Any], drift_html: str, quality_html: str) -> str:
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary.items())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>stock-mlops monitoring: {team}</title></head><body>"
        f"<h1>Monitoring report: team {team}</h1><table>{rows}</table>"
        "<h2>Feature drift (current window against the sessions before it)</h2>"
        f"{drift_html}"
        "<h2>Predicted against realised next-day return (recent against validation)</h2>"
        f"{quality_html}</body></html>"
    )
