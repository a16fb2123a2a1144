"""Nodes of the trading pipeline: snapshot the account, decide, submit, reconcile.

All broker I/O happens in the ``broker_account`` and ``broker_orders`` datasets; these nodes
only build requests and decisions.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd

from stock_mlops.brokers.base import AccountSnapshot
from stock_mlops.core import columns as C
from stock_mlops.core.params import TradingParams
from stock_mlops.core.strategy import (
    ALREADY_SUBMITTED,
    APPROVED,
    decide_orders,
    order_requests,
)

# Orders the broker should know about after this run: the new ones and those it already had.
AT_BROKER = (APPROVED, ALREADY_SUBMITTED)

logger = logging.getLogger(__name__)

ORDER_LOG_EXTRA = ["run_id", "decided_at", "broker"]


def as_of_date(prices: pd.DataFrame, run_date: Any) -> pd.Timestamp:
    """``run_date`` if given, else the newest date in ``prices``."""
    return pd.Timestamp(run_date) if run_date else prices[C.DATE].max()


def broker_request(params: TradingParams, as_of: pd.Timestamp) -> dict[str, Any]:
    """What the broker datasets need to connect (no secrets: keys come from the environment)."""
    return {
        "broker": params.broker,
        "live": params.live,
        "as_of": as_of.date().isoformat(),
        "local": params.local.model_dump(mode="json"),
        "alpaca": params.alpaca.model_dump(mode="json"),
    }


def request_account_snapshot(
    prices: pd.DataFrame, trading: dict[str, Any], run_date: Any
) -> dict[str, Any]:
    """Asks the broker dataset for the account as of the run date."""
    params = TradingParams.parse(trading, "trading")
    return broker_request(params, as_of_date(prices, run_date))


def latest_predictions(predictions: pd.DataFrame, team: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The newest prediction per symbol made on or before ``as_of`` by ``team``.

    An older prediction is passed on (not dropped) so the stale-prediction guard can name it.
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
    trading: dict[str, Any],
    team: str,
    run_date: Any,
    run_info: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decides today's orders from the team's predictions and the broker's account.

    Returns:
        The decisions twice: rows for the append-only ``orders`` log and for this run's
        submission and reconciliation.
    """
    params = TradingParams.parse(trading, "trading")
    as_of = as_of_date(prices, run_date)
    closes = prices[prices[C.DATE] == as_of].set_index(C.SYMBOL)[C.CLOSE]
    todays = latest_predictions(predictions, team, as_of)
    if todays.empty:
        logger.warning("no predictions by %s on or before %s", team, as_of.date())
    orders = decide_orders(todays, closes, broker_account, params, team, as_of)
    orders = orders.assign(
        run_id=run_info["run_id"],
        decided_at=pd.Timestamp(run_info["started_at"]),
        broker=params.broker,
    )
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
    return orders, orders


def build_submission(
    decided_orders: pd.DataFrame, prices: pd.DataFrame, trading: dict[str, Any], run_date: Any
) -> dict[str, Any]:
    """The approved orders, in broker-neutral form, for the ``broker_orders`` dataset.

    Orders the broker already has are included too: the dataset never resubmits a known client
    order id, it fetches the broker's report instead, so a re-run still reconciles them.
    """
    params = TradingParams.parse(trading, "trading")
    approved = decided_orders[decided_orders["status"].isin(AT_BROKER)]
    # Sells first, so that their proceeds are there when the buys arrive.
    approved = approved.sort_values(
        "side", key=lambda s: s.map({"sell": 0, "buy": 1}), kind="stable"
    )
    orders = [dataclasses.asdict(request) for request in order_requests(approved)]
    return {"request": broker_request(params, as_of_date(prices, run_date)), "orders": orders}


def reconcile_orders(decided_orders: pd.DataFrame, broker_orders: pd.DataFrame) -> pd.DataFrame:
    """Compares what was decided with what the broker reports, order by order.

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
