"""The evidently side of monitoring: the two reports, their tests read back, the dashboard.

evidently takes about 5 s (much more on a loaded machine) to import, so it is imported inside
the functions that use it, never when the pipeline is registered.

Units: the quality report works in percent (a daily return of 0.0123 is 1.23), because
evidently's counters round to two decimals and would show every MAE on a daily return as 0.01.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C

# Columns of the frame the quality report reads (one row per symbol and target date).
PREDICTED = "predicted_return_pct"
REALISED = "realised_return_pct"
DIRECTION_CORRECT = "direction_correct"  # 1 when sign(predicted) == sign(realised), NaN if no call
ALWAYS_UP_CORRECT = "always_up_correct"  # 1 when the session went up: the always-up base rate
NAIVE_ERROR = "naive_abs_error_pct"  # |realised|: the no-change forecast's absolute error
QUALITY_COLUMNS = [PREDICTED, REALISED, DIRECTION_CORRECT, ALWAYS_UP_CORRECT, NAIVE_ERROR]

# Stable names of the checks in ``monitoring_alert`` (what a retrain policy reads).
DRIFT_SHARE_CHECK = "drift_share"
MAE_CHECK = "mae_return_vs_naive"
DIRECTION_CHECK = "directional_accuracy_vs_base_rate"
FEATURE_DRIFT_CHECK = "feature_drift:"  # + column name; informative, never raises the alert
# Drift methods whose score is a p-value (no drift at or above the threshold); the others are
# distances (no drift below it).
P_VALUE_METHODS = {"ks", "chisquare", "z", "t_test", "anderson", "mannw", "cramer_von_mises"}


def quality_frame(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The quality report's columns from ``prediction_outcomes`` rows.

    A direction call counts only when both the predicted and the realised return are non-zero
    (as in ``evaluation_metrics``); a session without a move has no always-up answer either.

    Args:
        outcomes: Rows of ``prediction_outcomes``.

    Returns:
        ``date`` and :data:`QUALITY_COLUMNS`.
    """
    predicted = np.sign(outcomes["predicted_return"].to_numpy(dtype=float))
    realised = np.sign(outcomes["actual_return"].to_numpy(dtype=float))
    calls = (predicted != 0) & (realised != 0)
    return pd.DataFrame(
        {
            C.DATE: pd.to_datetime(outcomes[C.DATE]).to_numpy(),
            PREDICTED: 100 * outcomes["predicted_return"].to_numpy(dtype=float),
            REALISED: 100 * outcomes["actual_return"].to_numpy(dtype=float),
            DIRECTION_CORRECT: np.where(calls, (predicted == realised).astype(float), np.nan),
            ALWAYS_UP_CORRECT: np.where(realised != 0, (realised > 0).astype(float), np.nan),
            NAIVE_ERROR: 100 * outcomes["actual_return"].abs().to_numpy(dtype=float),
        }
    )


def _timestamp(run_date: dt.date) -> dt.datetime:
    # Midnight of the run date: the workspace's dashboards plot snapshots at this time.
    return dt.datetime.combine(run_date, dt.time())


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    *,
    method: str,
    threshold: float,
    max_share: float,
    run_date: dt.date,
    metadata: dict[str, str],
) -> Any:
    """evidently's drift preset on ``columns``, dated by the frames' ``date`` column.

    The preset's own tests are kept: "share of drifted columns below ``max_share``" and one
    drift test per column.

    Returns:
        The evidently ``Snapshot``.
    """
    from evidently import DataDefinition, Dataset, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset  # noqa: PLC0415

    # With the date as the timestamp the per-column plots have dates, not "Index binned".
    definition = DataDefinition(timestamp=C.DATE, numerical_columns=list(columns))
    report = Report(
        [
            DataDriftPreset(
                columns=list(columns), drift_share=max_share, method=method, threshold=threshold
            )
        ],
        include_tests=True,
        tags=["drift"],
        metadata=metadata,
    )
    frame = [C.DATE, *columns]
    return report.run(
        Dataset.from_pandas(current[frame], data_definition=definition),
        Dataset.from_pandas(reference[frame], data_definition=definition),
        timestamp=_timestamp(run_date),
        name=f"drift {run_date.isoformat()}",
    )


def run_quality_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    max_mae: float,
    min_direction: float,
    run_date: dt.date,
    metadata: dict[str, str],
) -> Any:
    """Predicted against realised returns, without MAPE (meaningless on returns near zero).

    Mean error (bias, with its error-over-time plot), MAE (with its tested limit), RMSE, and
    the baselines beside them: the no-change forecast's MAE and the always-up hit rate.

    Args:
        reference: :func:`quality_frame` of the reference outcomes.
        current: :func:`quality_frame` of the current outcomes.
        max_mae: The MAE test's limit (percent).
        min_direction: The directional test's lower limit (a share).
        run_date: The snapshot's date.
        metadata: Stored with the snapshot.

    Returns:
        The evidently ``Snapshot``.
    """
    from evidently import DataDefinition, Dataset, Regression, Report  # noqa: PLC0415
    from evidently.metrics import MAE, RMSE, MeanError, MeanValue  # noqa: PLC0415
    from evidently.tests import gte, lt  # noqa: PLC0415

    definition = DataDefinition(
        timestamp=C.DATE,
        numerical_columns=QUALITY_COLUMNS,
        regression=[Regression(target=REALISED, prediction=PREDICTED)],
    )
    report = Report(
        [
            MeanError(),
            MAE(mean_tests=[lt(max_mae)]),
            MeanValue(column=NAIVE_ERROR),
            RMSE(error_distr=False),
            # Directional accuracy warns only: a 60-session window moves it by several points.
            MeanValue(column=DIRECTION_CORRECT, tests=[gte(min_direction, is_critical=False)]),
            MeanValue(column=ALWAYS_UP_CORRECT),
        ],
        tags=["quality"],
        metadata=metadata,
    )
    frame = [C.DATE, *QUALITY_COLUMNS]
    return report.run(
        Dataset.from_pandas(current[frame], data_definition=definition),
        Dataset.from_pandas(reference[frame], data_definition=definition),
        timestamp=_timestamp(run_date),
        name=f"quality {run_date.isoformat()}",
    )


def metric_values(snapshot: Any) -> dict[str, Any]:
    """The snapshot's metric values by a readable key (``DriftedColumnsCount``, ``MAE``,
    ``MeanValue:<column>``, ``ValueDrift:<column>``)."""
    values = {}
    for metric in snapshot.dict()["metrics"]:
        params = metric["config"]
        kind = params["type"].split(":")[-1]
        column = params.get("column")
        values[f"{kind}:{column}" if column else kind] = metric["value"]
    return values


def checks(snapshot: Any) -> list[dict[str, Any]]:
    """Every evidently test of a snapshot as one ``monitoring_alert`` entry.

    Args:
        snapshot: An evidently ``Snapshot``.

    Returns:
        Entries with ``name`` (stable, see the module constants), ``status`` (evidently's:
        ``SUCCESS``, ``FAIL``, ``WARNING``, ``ERROR``), ``value``, ``threshold``,
        ``condition`` (``lt`` or ``gte``: how value and threshold must compare to pass),
        ``critical`` (only critical checks raise the alert), ``unit`` and evidently's
        ``description``.
    """
    result = snapshot.dict()
    metrics = {m["id"]: m for m in result["metrics"]}
    entries = []
    for test in result["tests"]:
        metric = metrics.get(test["metric_config"]["metric_id"], {})
        params = test["metric_config"]["params"]
        condition = test["test_config"]  # empty for the per-column drift test of the preset
        kind = params["type"].split(":")[-1]
        value = metric.get("value")
        bound = test.get("bound_test") or {}
        if isinstance(value, dict):  # {count, share} or {mean, std}: the slot the test bound
            if "is_count" in bound:
                value = value["count" if bound["is_count"] else "share"]
            else:
                value = value["mean" if bound.get("is_mean", True) else "std"]
        if kind == "DriftedColumnsCount":
            name, unit = DRIFT_SHARE_CHECK, "share of monitored features"
        elif kind == "ValueDrift":
            name, unit = FEATURE_DRIFT_CHECK + params["column"], f"{params['method']} score"
        elif kind == "MAE":
            name, unit = MAE_CHECK, "percent"
        elif kind == "MeanValue" and params.get("column") == DIRECTION_CORRECT:
            name, unit = DIRECTION_CHECK, "share of calls"
        else:
            name, unit = test["name"], ""
        entries.append(
            {
                "name": name,
                "status": getattr(test["status"], "value", test["status"]),
                "value": _number(value),
                "threshold": _number(condition.get("threshold", params.get("threshold"))),
                "condition": _condition(condition, params.get("method")),
                "critical": bool(condition.get("is_critical", False)),
                "unit": unit,
                "description": test["description"],
            }
        )
    return entries


def _condition(condition: dict[str, Any], method: str | None) -> str:
    if not condition:  # a per-feature drift test: its method says which side passes
        return "gte" if method in P_VALUE_METHODS else "lt"
    names = {"LessThanMetricTest": "lt", "GreaterOrEqualMetricTest": "gte"}
    kind = condition["type"].split(":")[-1]
    return names.get(kind, kind)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def dashboard() -> Any:
    """The team's dashboard: drift share, MAE on return beside the naive forecast's, and
    directional accuracy beside the always-up base rate, one point per run date."""
    from evidently.sdk.models import (  # noqa: PLC0415
        DashboardModel,
        DashboardTabModel,
        PanelMetric,
    )
    from evidently.sdk.panels import line_plot_panel  # noqa: PLC0415

    panels = [
        line_plot_panel(
            title="Share of drifted features",
            description="monitored features whose distribution drifted from the reference",
            values=[
                PanelMetric(
                    legend="drift share",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
            size="half",
        ),
        line_plot_panel(
            title="MAE on next-session return (%)",
            description="the model against the no-change forecast on the same sessions",
            values=[
                PanelMetric(legend="model", metric="MAE", metric_labels={"value_type": "mean"}),
                PanelMetric(
                    legend="naive (no change)",
                    metric="MeanValue",
                    metric_labels={"column": NAIVE_ERROR},
                ),
            ],
            size="half",
        ),
        line_plot_panel(
            title="Directional accuracy",
            description="share of direction calls that were right, beside always calling up",
            values=[
                PanelMetric(
                    legend="model", metric="MeanValue", metric_labels={"column": DIRECTION_CORRECT}
                ),
                PanelMetric(
                    legend="always up",
                    metric="MeanValue",
                    metric_labels={"column": ALWAYS_UP_CORRECT},
                ),
            ],
            size="full",
        ),
    ]
    tab = DashboardTabModel(title="Monitoring", panels=[panel.id for panel in panels])
    return DashboardModel(tabs=[tab], panels=panels)


def report_html(snapshot: Any) -> str:
    """evidently's standalone page of one report (its script and font inlined, no network)."""
    return snapshot.get_html_str(as_iframe=False)
