"""Alpaca's trading API as a :class:`~stock_mlops.brokers.base.Broker` over alpaca-py.

- The client is alpaca-py's ``TradingClient``; keys come from ``ALPACA_API_KEY`` and
  ``ALPACA_SECRET_KEY``; the paper endpoint is used unless ``paper=False`` (the trading datasets
  allow that only with an explicit confirmation).
- Responses are read raw (``raw_data=True``) and mapped here: Alpaca adds fields and statuses over
  time, and alpaca-py's strict models turn such an addition into a failed run (older releases
  fail on today's account payload). Figures arrive as strings and are converted to floats.
- Every HTTP request has a timeout (alpaca-py sets none); every API error, timeout or connection
  failure becomes a :class:`~stock_mlops.brokers.base.BrokerError` naming the call, the symbol and
  Alpaca's message.
- Orders are market orders, ``time_in_force=day``, carrying the decision's ``client_order_id``.
  Alpaca refuses a second order with the same id (422), and a submission whose outcome is
  unknown (timeout, 5xx, that 422) is settled by looking the id up before anything is reported
  as failed, so a retry never places an order twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest

from stock_mlops.core.broker_types import (
    AccountSnapshot,
    BrokerError,
    Clock,
    OrderReport,
    OrderRequest,
    Position,
)
from stock_mlops.core.calendar import NEW_YORK
from stock_mlops.core.symbols import is_valid_symbol
from stock_mlops.integrations.alpaca import (
    MissingCredentialsError,
    apply_request_timeout,
    credentials_from_environment,
    describe_failure,
)

logger = logging.getLogger(__name__)

# Orders submitted this many days before the broker's clock count as "known" in a snapshot;
# older ids cannot collide with today's (the decision date is part of every id).
RECENT_ORDER_DAYS = 10
# Alpaca's maximum page for GET /v2/orders.
MAX_ORDERS_PER_REQUEST = 500
# Alpaca's own equity may differ from cash + positions by pending settlement; beyond this
# relative gap the snapshot is logged as suspicious.
EQUITY_TOLERANCE = 0.01

# Alpaca order status -> broker-neutral status (stock_mlops.brokers.base).
_NEUTRAL_STATUS = {
    "new": "new",
    "accepted": "accepted",
    "pending_new": "pending_new",
    "accepted_for_bidding": "accepted",
    "pending_review": "pending_new",
    "held": "accepted",
    "stopped": "accepted",
    "pending_replace": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "calculated": "filled",
    "canceled": "canceled",
    # A cancel was requested: the order is no longer meant to trade.
    "pending_cancel": "canceled",
    # Superseded by another order: this one will never trade.
    "replaced": "canceled",
    "expired": "expired",
    # A DAY order done for the day will expire without further fills.
    "done_for_day": "expired",
    "rejected": "rejected",
    "suspended": "rejected",
}
_PARTIAL_WHEN_SHORT = frozenset({"filled", "expired"})

_T = TypeVar("_T")


def neutral_status(alpaca_status: str, qty: float, filled_qty: float) -> str:
    """Maps an Alpaca order status onto the broker-neutral statuses.

    A "filled" or "done for the day" order whose filled quantity falls short of the ordered one
    is reported as ``partially_filled``; an unknown status maps to ``accepted`` (the order exists
    and is not known to be final) and the caller keeps Alpaca's word in the report's message.
    """
    status = _NEUTRAL_STATUS.get(alpaca_status, "accepted")
    if status in _PARTIAL_WHEN_SHORT and 0 < filled_qty < qty - 1e-9:
        return "partially_filled"
    return status


def _number(raw: dict[str, Any], key: str, what: str) -> float:
    value = raw.get(key)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BrokerError(f"alpaca {what}: '{key}' is not a number ({value!r})") from None


def _optional_number(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _parse_time(text: str) -> dt.datetime:
    # Alpaca writes nanoseconds; Python 3.11+ reads the ISO text and keeps microseconds.
    moment = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def order_report(raw: dict[str, Any]) -> OrderReport:
    """An Alpaca order (raw JSON) as a broker-neutral :class:`OrderReport`."""
    qty = _optional_number(raw.get("qty")) or 0.0
    filled_qty = _optional_number(raw.get("filled_qty")) or 0.0
    alpaca_status = str(raw.get("status", ""))
    if alpaca_status not in _NEUTRAL_STATUS:
        logger.warning("unknown Alpaca order status '%s': reported as accepted", alpaca_status)
    status = neutral_status(alpaca_status, qty, filled_qty)
    return OrderReport(
        client_order_id=str(raw["client_order_id"]),
        broker_order_id=str(raw["id"]),
        symbol=str(raw.get("symbol") or ""),
        side=raw.get("side") or "",
        qty=qty,
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=_optional_number(raw.get("filled_avg_price")),
        # Alpaca charges no commission on equities; regulatory fees are separate activities.
        fee=0.0,
        submitted_at=raw.get("submitted_at"),
        filled_at=raw.get("filled_at"),
        message="" if status == alpaca_status else f"alpaca status '{alpaca_status}'",
    )


class AlpacaBroker:
    """The Broker protocol over an alpaca-py ``TradingClient`` created with ``raw_data=True``.

    Args:
        client: The trading client (its session should time out: see :meth:`from_environment`).
        paper: Whether the client trades the paper account (reported in logs and snapshots).
    """

    name = "alpaca"

    def __init__(self, client: TradingClient, *, paper: bool = True) -> None:
        self._client = client
        self.paper = paper

    @classmethod
    def from_environment(
        cls,
        *,
        paper: bool = True,
        url_override: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> AlpacaBroker:
        """Connects with the keys in ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``.

        Args:
            paper: Trade the paper account (False means real money).
            url_override: Another base URL (a proxy or a test server).
            timeout_seconds: Connect and read timeout of every request.

        Raises:
            BrokerError: When a key variable is missing (the message names it).
        """
        try:
            api_key, secret_key = credentials_from_environment()
        except MissingCredentialsError as exc:
            raise BrokerError(str(exc)) from None
        client = TradingClient(
            api_key, secret_key, paper=paper, raw_data=True, url_override=url_override
        )
        apply_request_timeout(client, timeout_seconds)
        logger.info("alpaca broker: %s account", "paper" if paper else "LIVE")
        return cls(client, paper=paper)

    # ------------------------------------------------------------------------ reading
    def account(self) -> AccountSnapshot:
        """Cash, positions marked at Alpaca's current price, clock and recent client order ids."""
        raw = self._call("get_account", "", self._client.get_account)
        if raw.get("trading_blocked") or raw.get("account_blocked"):
            logger.warning("the Alpaca account is blocked: orders will be rejected")
        cash = _number(raw, "cash", "account")
        positions = self.positions()
        clock = self.clock()
        recent = self._recent_orders(clock.timestamp)
        snapshot = AccountSnapshot(
            broker=self.name,
            cash=cash,
            positions=positions,
            clock=clock,
            known_client_order_ids=frozenset(str(row["client_order_id"]) for row in recent),
            buying_power=_optional_number(raw.get("buying_power")),
            orders=tuple(order_report(row) for row in recent),
        )
        reported = _optional_number(raw.get("equity"))
        if reported and abs(snapshot.equity - reported) > EQUITY_TOLERANCE * reported:
            logger.warning(
                "alpaca equity %.2f differs from cash + positions %.2f",
                reported,
                snapshot.equity,
            )
        return snapshot

    def clock(self) -> Clock:
        """Alpaca's market clock; the execution session is today if open, else the next open."""
        raw = self._call("get_clock", "", self._client.get_clock)
        try:
            timestamp = _parse_time(raw["timestamp"])
            is_open = bool(raw["is_open"])
            # A DAY order placed while closed waits for the next open (same day before 9:30).
            session_start = timestamp if is_open else _parse_time(raw["next_open"])
        except (KeyError, ValueError) as exc:
            raise BrokerError(f"alpaca get_clock: unreadable clock ({exc})") from None
        return Clock(
            timestamp=timestamp,
            is_open=is_open,
            execution_session=session_start.astimezone(NEW_YORK).date(),
        )

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol, marked at Alpaca's current price."""
        rows = self._call("get_all_positions", "", self._client.get_all_positions)
        positions = {}
        for row in rows:
            symbol = str(row.get("symbol"))
            if not is_valid_symbol(symbol):
                # A position names a symbol that reaches orders and reports: a name only.
                raise BrokerError(
                    f"alpaca get_all_positions: position symbol {symbol!r} is not a valid symbol"
                )
            qty = _number(row, "qty", f"position {symbol}")
            avg_price = _number(row, "avg_entry_price", f"position {symbol}")
            market_value = _optional_number(row.get("market_value"))
            price = _optional_number(row.get("current_price"))
            if price is None and market_value is not None and qty:
                price = market_value / qty
            positions[symbol] = Position(
                symbol=symbol,
                qty=qty,
                avg_price=avg_price,
                market_price=price if price is not None else avg_price,
            )
        return positions

    def get_order_by_client_id(self, client_order_id: str) -> OrderReport | None:
        """Alpaca's record of an order, or None when Alpaca answers 404 (never seen)."""
        try:
            raw = self._client.get_order_by_client_id(client_order_id)
        except APIError as exc:
            if exc.status_code == requests.codes.not_found:
                return None
            raise self._error("get_order_by_client_id", client_order_id, exc) from exc
        except requests.RequestException as exc:
            raise self._error("get_order_by_client_id", client_order_id, exc) from exc
        return order_report(raw)

    def _recent_orders(self, now: dt.datetime) -> list[dict[str, Any]]:
        request = GetOrdersRequest(
            status=QueryOrderStatus.ALL,
            limit=MAX_ORDERS_PER_REQUEST,
            after=now - dt.timedelta(days=RECENT_ORDER_DAYS),
            direction=Sort.DESC,
        )
        rows = self._call("get_orders", "", self._client.get_orders, request)
        if len(rows) >= MAX_ORDERS_PER_REQUEST:
            logger.warning(
                "more than %d Alpaca orders in %d days: only the newest are listed as known "
                "(each submission is still checked by client order id)",
                MAX_ORDERS_PER_REQUEST,
                RECENT_ORDER_DAYS,
            )
        return rows

    # ------------------------------------------------------------------------ trading
    def submit_order(self, order: OrderRequest) -> OrderReport:
        """Submits a DAY market order; idempotent on ``client_order_id``.

        Raises:
            BrokerError: When Alpaca refused the order or its fate cannot be established.
        """
        label = f"{order.client_order_id} ({order.side} {order.qty:g} {order.symbol})"
        if not order.qty > 0:
            raise BrokerError(f"alpaca submit_order {label}: quantity must be positive")
        try:
            request = MarketOrderRequest(
                symbol=order.symbol,
                qty=order.qty,
                side=OrderSide(order.side),
                time_in_force=TimeInForce.DAY,
                client_order_id=order.client_order_id,
            )
        except ValueError as exc:
            raise BrokerError(f"alpaca submit_order {label}: invalid order ({exc})") from None
        try:
            raw = self._client.submit_order(request)
        except (APIError, requests.RequestException) as exc:
            return self._settle_failed_submit(order, label, exc)
        report = order_report(raw)
        logger.info("alpaca accepted %s as %s (%s)", label, report.broker_order_id, report.status)
        return report

    def _settle_failed_submit(
        self, order: OrderRequest, label: str, exc: APIError | requests.RequestException
    ) -> OrderReport:
        """Decides whether a failed submission placed the order after all.

        A timeout or a 5xx may hide an order Alpaca did accept, and a 422 for a duplicate id means
        an earlier attempt got through: in every case the client order id is looked up first.
        """
        problem = describe_failure(exc)
        try:
            existing = self.get_order_by_client_id(order.client_order_id)
        except BrokerError as lookup:
            raise BrokerError(
                f"alpaca submit_order {label} failed: {problem}; looking the order up failed "
                f"too, so whether Alpaca holds it is unknown: {lookup}"
            ) from exc
        if existing is None:
            raise BrokerError(f"alpaca submit_order {label} failed: {problem}") from exc
        logger.warning(
            "alpaca submit_order %s answered '%s' but Alpaca holds the order as %s (%s)",
            label,
            problem,
            existing.broker_order_id,
            existing.status,
        )
        return existing

    def cancel_orders(self, broker_order_ids: Iterable[str]) -> list[str]:
        """Cancels orders by Alpaca order id, best effort: failures are logged, never raised.

        Returns:
            The ids whose cancellation Alpaca accepted.
        """
        cancelled = []
        for order_id in broker_order_ids:
            try:
                self._client.cancel_order_by_id(order_id)
            except (APIError, requests.RequestException, ValueError) as exc:
                logger.warning(
                    "could not cancel Alpaca order %s: %s", order_id, describe_failure(exc)
                )
                continue
            cancelled.append(order_id)
        if cancelled:
            logger.warning("cancelled Alpaca orders %s", cancelled)
        return cancelled

    # ------------------------------------------------------------------------ plumbing
    def _call(self, call: str, subject: str, func: Callable[..., _T], *args: Any) -> _T:
        try:
            return func(*args)
        except (APIError, requests.RequestException) as exc:
            raise self._error(call, subject, exc) from exc

    @staticmethod
    def _error(call: str, subject: str, exc: BaseException) -> BrokerError:
        about = f" for {subject}" if subject else ""
        return BrokerError(f"alpaca {call}{about} failed: {describe_failure(exc)}")
