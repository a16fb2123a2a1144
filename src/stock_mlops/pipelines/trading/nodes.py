"""Nodes of the trading pipeline: snapshot the account, decide, log, submit, reconcile, record
each order's status history and the account's equity, and report the account.

All broker I/O happens in the ``broker_account`` and ``broker_orders`` datasets; these nodes
only build requests, decisions and tables.

The ``orders`` log holds each order's status history, one row per event (``event`` column):
``decided`` (``status`` is the decision: approved, refused or skipped, as before), then, from the
broker's own reports, ``submitted``, ``accepted`` or ``rejected``, ``partially_filled``,
``filled``, ``canceled`` or ``expired`` (``status`` repeats the event). It is keyed by
``client_order_id, event, status``: re-running a day adds nothing, a decision that is
``already_submitted`` adds no row (its first decision is logged), and a run killed between deciding
and submitting leaves a ``decided`` row without a ``submitted`` one, which the account report
names.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import (
    AccountSnapshot,
    BrokerRequest,
    OrderReport,
    OrderSubmission,
)
from stock_mlops.core.outcomes import as_of_date
from stock_mlops.core.params import TradingParams
from stock_mlops.core.strategy import (
    ALREADY_SUBMITTED,
    APPROVED,
    ORDER_COLUMNS,
    decide_orders,
    order_requests,
)
from stock_mlops.pipelines.trading.report import account_report_page, account_report_table

# Orders the broker should know about after this run: the new ones and those it already had.
AT_BROKER = (APPROVED, ALREADY_SUBMITTED)
DECIDED = "decided"
# Columns of the orders log after the decision's own (older logs lack the last five).
ORDER_LOG_COLUMNS = [
    *ORDER_COLUMNS,
    "run_id",
    "decided_at",
    "broker",
    "event",
    "event_at",
    "broker_order_id",
    "filled_qty",
    "filled_avg_price",
]
ACCOUNT_HISTORY_COLUMNS = ["date", "cash", "positions_value", "equity", "broker"]

logger = logging.getLogger(__name__)


def broker_request(
    params: TradingParams, prices: pd.DataFrame, as_of: pd.Timestamp
) -> BrokerRequest:
    """What the broker datasets need to connect (no secrets: keys come from the environment).

    Args:
        params: ``params:trading``.
        prices: The ``prices`` dataset; the bars up to ``as_of`` go with the request.
        as_of: The decision date.

    Returns:
        The request.
    """
    return BrokerRequest(
        broker=params.broker,
        live=params.live,
        as_of=as_of.date(),
        local=params.local,
        alpaca=params.alpaca,
        market_bars=prices[prices[C.DATE] <= as_of],
    )


def request_account_snapshot(
    prices: pd.DataFrame, params: TradingParams, run_date: str | None
) -> BrokerRequest:
    """Asks the broker dataset for the account as of the run date.

    Args:
        prices: The ``prices`` dataset.
        params: ``params:trading``.
        run_date: ``params:run_date`` (None: the newest date in ``prices``).

    Returns:
        The request the ``broker_account`` dataset executes.
    """
    return broker_request(params, prices, as_of_date(run_date, prices[C.DATE]))


def latest_predictions(predictions: pd.DataFrame, team: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The newest prediction per symbol made on or before ``as_of`` by ``team``.

    An older prediction is passed on (not dropped) so the stale-prediction guard can name it.

    Args:
        predictions: The ``predictions`` log.
        team: The team whose predictions count.
        as_of: The decision date.

    Returns:
        One row per symbol.
    """
    mine = predictions[
        (predictions["team"] == team) & (pd.to_datetime(predictions["feature_date"]) <= as_of)
    ]
    ordered = mine.sort_values(["feature_date", "created_at"], kind="stable")
    return ordered.drop_duplicates(C.SYMBOL, keep="last").reset_index(drop=True)


def decide_trades(
    predictions: pd.DataFrame,
    prices: pd.DataFrame,
    broker_account: AccountSnapshot,
    params: TradingParams,
    team: str,
    run_date: str | None,
) -> pd.DataFrame:
    """Decides today's orders from the team's predictions and the broker's account.

    Args:
        predictions: The ``predictions`` log.
        prices: The ``prices`` dataset (today's closes are the reference prices).
        broker_account: The account snapshot taken by this run.
        params: ``params:trading``.
        team: ``params:team``.
        run_date: ``params:run_date`` (None: the newest date in ``prices``).

    Returns:
        Every order considered, approved or not, with ``status`` and ``reason``.
    """
    as_of = as_of_date(run_date, prices[C.DATE])
    closes = prices[prices[C.DATE] == as_of].set_index(C.SYMBOL)[C.CLOSE]
    todays = latest_predictions(predictions, team, as_of)
    if todays.empty:
        logger.warning("no predictions by %s on or before %s", team, as_of.date())
    orders = decide_orders(todays, closes, broker_account, params, team, as_of)
    for row in orders[orders["status"] != APPROVED].itertuples():
        logger.warning(
            "%s %s %s: %s (%s)", row.symbol, row.side, row.status, row.reason, as_of.date()
        )
    logger.info(
        "%d orders approved for %s: %s",
        int((orders["status"] == APPROVED).sum()),
        as_of.date(),
        orders.loc[orders["status"] == APPROVED, ["symbol", "side", "qty"]].to_dict("records"),
    )
    return orders


def record_decisions(
    decided_orders: pd.DataFrame, run_info: dict[str, str], broker: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This run's decisions as ``decided`` rows of the append-only ``orders`` log.

    A decision that is ``already_submitted`` adds no row: the order's first decision is in the
    log already. The decisions go on to the submission only after this node, so that every
    order the broker sees was logged first.

    Args:
        decided_orders: The decisions of this run.
        run_info: The run's identity and start time.
        broker: ``params:trading.broker``.

    Returns:
        The log rows (decisions with run id, decision time, broker and event), and the decisions
        unchanged for the submission.
    """
    decided_at = _utc(run_info["started_at"])
    rows = decided_orders[decided_orders["status"] != ALREADY_SUBMITTED].assign(
        run_id=run_info["run_id"],
        decided_at=decided_at,
        broker=broker,
        event=DECIDED,
        event_at=decided_at,
        broker_order_id="",
        filled_qty=np.nan,
        filled_avg_price=np.nan,
    )
    return rows[ORDER_LOG_COLUMNS].reset_index(drop=True), decided_orders


def _utc(stamp: Any) -> pd.Timestamp:
    moment = pd.Timestamp(stamp)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def build_submission(
    decided_orders: pd.DataFrame,
    prices: pd.DataFrame,
    params: TradingParams,
    run_date: str | None,
) -> OrderSubmission:
    """The approved orders, in broker-neutral form, for the ``broker_orders`` dataset.

    Orders the broker already has are included too: the dataset never resubmits a known client
    order id, it fetches the broker's report instead, so a re-run still reconciles them.

    Args:
        decided_orders: The decisions of this run.
        prices: The ``prices`` dataset.
        params: ``params:trading``.
        run_date: ``params:run_date``.

    Returns:
        The submission, sells first so that their proceeds are there when the buys arrive.
    """
    approved = decided_orders[decided_orders["status"].isin(AT_BROKER)]
    approved = approved.sort_values(
        "side", key=lambda s: s.map({"sell": 0, "buy": 1}), kind="stable"
    )
    request = broker_request(params, prices, as_of_date(run_date, prices[C.DATE]))
    return OrderSubmission(request=request, orders=tuple(order_requests(approved)))


def reconcile_orders(decided_orders: pd.DataFrame, broker_orders: pd.DataFrame) -> pd.DataFrame:
    """Compares what was decided with what the broker reports, order by order.

    Args:
        decided_orders: The decisions of this run.
        broker_orders: The broker's reports of this run's submission.

    Returns:
        One row per approved (or already submitted) order: decided side and quantity, the
        broker's status and filled quantity, and ``matches`` (False when the broker lost,
        changed or rejected the order).
    """
    decided = decided_orders[decided_orders["status"].isin(AT_BROKER)][
        ["client_order_id", C.SYMBOL, "side", "qty"]
    ]
    reported = broker_orders.rename(
        columns={"symbol": "broker_symbol", "side": "broker_side", "qty": "broker_qty"}
    )
    merged = decided.merge(reported, on="client_order_id", how="outer", indicator=True)
    merged["matches"] = (
        (merged["_merge"] == "both")
        & (merged["broker_side"] == merged["side"])
        & ((merged["broker_qty"] - merged["qty"]).abs() < 1e-9)
        & ~merged["status"].isin(["rejected", "canceled", "expired"])
    )
    merged["issue"] = ""
    merged.loc[merged["_merge"] == "left_only", "issue"] = "decided but unknown to the broker"
    merged.loc[merged["_merge"] == "right_only", "issue"] = "reported by the broker but not decided"
    merged.loc[(merged["_merge"] == "both") & ~merged["matches"], "issue"] = (
        "broker status or quantity differs from the decision"
    )
    mismatches = merged[~merged["matches"]]
    for row in mismatches.itertuples():
        logger.warning("reconciliation: %s %s", row.client_order_id, row.issue)
    return merged.drop(columns="_merge")


def lifecycle_events(report: OrderReport) -> list[tuple[str, str | None]]:
    """The status history a broker report implies, as ``(event, when)`` pairs, in order.

    Args:
        report: The broker's report of one order.

    Returns:
        ``submitted``, then ``accepted`` or ``rejected`` (nothing yet for an order still
        ``new``), then ``partially_filled`` when some but not all was filled, and the final
        ``filled``, ``canceled`` or ``expired``.
    """
    status = report.status
    events: list[tuple[str, str | None]] = [("submitted", report.submitted_at)]
    if status == "rejected":
        return [*events, ("rejected", report.submitted_at)]
    if status in ("new", "pending_new"):
        return events
    events.append(("accepted", report.submitted_at))
    partial = 0 < (report.filled_qty or 0.0) < report.qty - 1e-9
    if partial or status == "partially_filled":
        events.append(("partially_filled", report.filled_at))
    if status in ("filled", "canceled", "expired"):
        events.append((status, report.filled_at or report.submitted_at))
    return events


def record_order_events(
    broker_orders: pd.DataFrame,
    broker_account: AccountSnapshot,
    run_info: dict[str, str],
    team: str,
    broker: str,
) -> pd.DataFrame:
    """The status history of the team's recent orders, from the broker's reports.

    Every event is emitted again on every run: the log is keyed by ``client_order_id, event,
    status``, so it keeps each event once, and an order that filled since yesterday (at today's
    open) gets its ``filled`` row today.

    Args:
        broker_orders: The broker's reports of this run's submission.
        broker_account: The account after this run's submission (its recent orders).
        run_info: The run's identity.
        team: ``params:team`` (only its client order ids are logged).
        broker: ``params:trading.broker``.

    Returns:
        Rows of the ``orders`` log, one per event.
    """
    reports = {r.client_order_id: r for r in broker_account.orders}
    for record in broker_orders.to_dict("records"):
        report = _report_from_row(record)
        reports.setdefault(report.client_order_id, report)
    prefix = f"{team}-"
    rows = []
    for cid, report in sorted(reports.items()):
        if not cid.startswith(prefix):
            continue  # an order this team's code did not place (a shared account)
        decided = _decision_date(cid, team)
        for event, when in lifecycle_events(report):
            rows.append(
                {
                    "client_order_id": cid,
                    "team": team,
                    "decision_date": decided,
                    C.TARGET_DATE: calendar.next_session(decided)
                    if decided is not pd.NaT
                    else pd.NaT,
                    C.SYMBOL: report.symbol,
                    "side": report.side,
                    "qty": float(report.qty),
                    "reference_price": np.nan,
                    "predicted_return": np.nan,
                    "status": event,
                    "reason": report.message or "",
                    "run_id": run_info["run_id"],
                    "decided_at": pd.NaT,
                    "broker": broker,
                    "event": event,
                    "event_at": _event_time(when),
                    "broker_order_id": report.broker_order_id,
                    "filled_qty": float(report.filled_qty or 0.0),
                    "filled_avg_price": (
                        np.nan
                        if report.filled_avg_price is None
                        else float(report.filled_avg_price)
                    ),
                }
            )
    frame = pd.DataFrame(rows, columns=ORDER_LOG_COLUMNS)
    for column in ("decision_date", C.TARGET_DATE):
        frame[column] = pd.to_datetime(frame[column])
    for column in ("decided_at", "event_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("qty", "reference_price", "predicted_return", "filled_qty", "filled_avg_price"):
        frame[column] = frame[column].astype(float)
    return frame


def _report_from_row(record: dict[str, Any]) -> OrderReport:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    values = {k: clean(v) for k, v in record.items() if k in OrderReport.__dataclass_fields__}
    values["message"] = values.get("message") or ""
    values["filled_qty"] = values.get("filled_qty") or 0.0
    values["fee"] = values.get("fee") or 0.0
    return OrderReport(**values)


def _decision_date(client_order_id: str, team: str) -> pd.Timestamp:
    # Ids are "<team>-<YYYYMMDD>-<symbol>-<side>" (core.strategy.client_order_id).
    stamp = client_order_id[len(team) + 1 : len(team) + 9]
    parsed = pd.to_datetime(stamp, format="%Y%m%d", errors="coerce")
    return pd.NaT if pd.isna(parsed) else parsed


def _event_time(when: str | None) -> pd.Timestamp:
    if not when:
        return pd.NaT
    moment = pd.Timestamp(when)
    if moment.tzinfo is None:
        # The simulated broker stamps events with the session's date: a New York trading day.
        moment = moment.tz_localize(calendar.NEW_YORK)
    return moment.tz_convert("UTC")


def record_account_history(
    broker_account: AccountSnapshot, broker_orders: pd.DataFrame
) -> pd.DataFrame:
    """One row of the team's paper-trading equity history: the account as this run leaves it.

    Args:
        broker_account: The account after this run's submission.
        broker_orders: This run's submission (only orders the node after it).

    Returns:
        ``date, cash, positions_value, equity, broker`` for the run's as-of date.
    """
    del broker_orders  # an input so that the account read is the one after the orders
    date = broker_account.as_of or broker_account.clock.timestamp.date()
    return pd.DataFrame(
        {
            "date": [pd.Timestamp(date)],
            "cash": [float(broker_account.cash)],
            "positions_value": [float(broker_account.positions_value)],
            "equity": [float(broker_account.equity)],
            "broker": [broker_account.broker],
        },
        columns=ACCOUNT_HISTORY_COLUMNS,
    )


def report_account(
    broker_account: AccountSnapshot,
    order_events: pd.DataFrame,
    account_history: pd.DataFrame,
    predictions: pd.DataFrame,
    params: TradingParams,
    team: str,
) -> tuple[pd.DataFrame, str]:
    """The account report from the broker itself: a table and a self-contained page.

    Args:
        broker_account: The account after this run's submission.
        order_events: The whole ``orders`` log (read after this run's events were appended).
        account_history: The ``account_history`` log.
        predictions: The ``predictions`` log.
        params: ``params:trading``.
        team: ``params:team``.

    Returns:
        ``account_report`` (see :mod:`stock_mlops.pipelines.trading.report`) and its HTML page.
    """
    table = account_report_table(
        broker_account, order_events, account_history, predictions, params, team
    )
    for text in table.loc[table["section"] == "decision", "text"].head(1):
        logger.info("account report, %s: %s", broker_account.as_of, text)
    return table, account_report_page(table)
