"""Nodes of the trading pipeline: snapshot the account, decide, submit, reconcile.

All broker I/O happens in the ``broker_account`` and ``broker_orders`` datasets; these nodes
only build requests and decisions.
"""

from __future__ import annotations

import logging

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import AccountSnapshot, BrokerRequest, OrderSubmission
from stock_mlops.core.outcomes import as_of_date
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
) -> pd.DataFrame:
    """This run's decisions as rows of the append-only ``orders`` log.

    Args:
        decided_orders: The decisions of this run.
        run_info: The run's identity and start time.
        broker: ``params:trading.broker``.

    Returns:
        The decisions with the run id, decision time and broker added; a re-decision of an
        order the broker already has is not a new decision and is left out, so re-running a
        day adds no row.
    """
    new = decided_orders[decided_orders["status"] != ALREADY_SUBMITTED]
    return new.assign(
        run_id=run_info["run_id"],
        decided_at=pd.Timestamp(run_info["started_at"]),
        broker=broker,
    )


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
