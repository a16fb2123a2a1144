"""The broker interface shared by the simulated local broker and Alpaca's paper API."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Side = Literal["buy", "sell"]
# Broker-neutral order states (Alpaca's are mapped onto these).
OPEN_STATES = frozenset({"new", "accepted", "pending_new", "partially_filled"})
FINAL_STATES = frozenset({"filled", "canceled", "rejected", "expired"})


class BrokerError(RuntimeError):
    """The broker refused, failed or timed out; the message says which call and why."""


@dataclass(frozen=True)
class Clock:
    """The broker's view of the market: is it open, and which session would an order meet."""

    timestamp: dt.datetime
    is_open: bool
    # The trading session in which an order submitted now would execute.
    execution_session: dt.date


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: float
    avg_price: float
    market_price: float

    @property
    def market_value(self) -> float:
        return self.qty * self.market_price


@dataclass(frozen=True)
class OrderRequest:
    """An order as decided, before the broker sees it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    reference_price: float
    decision_date: dt.date
    target_date: dt.date


@dataclass(frozen=True)
class OrderReport:
    """What the broker says about an order."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    side: Side
    qty: float
    status: str
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    fee: float = 0.0
    submitted_at: str | None = None
    filled_at: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AccountSnapshot:
    """Cash, positions and clock at one moment, plus the client order ids the broker knows."""

    broker: str
    cash: float
    positions: dict[str, Position]
    clock: Clock
    known_client_order_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def equity(self) -> float:
        return self.cash + sum(p.market_value for p in self.positions.values())


class Broker(Protocol):
    """What the trading pipeline needs from any broker."""

    name: str

    def account(self) -> AccountSnapshot:
        """Cash, positions (marked to market), clock and known client order ids."""

    def clock(self) -> Clock:
        """The broker's market clock."""

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol."""

    def submit_order(self, order: OrderRequest) -> OrderReport:
        """Submits a market order; must be idempotent on ``client_order_id``."""

    def get_order_by_client_id(self, client_order_id: str) -> OrderReport | None:
        """The broker's record of an order, or None if it never saw it."""
