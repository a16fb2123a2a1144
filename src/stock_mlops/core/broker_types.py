"""What the trading rule, the brokers and the broker datasets exchange: plain, typed values.

They live in ``core`` because the rule (:mod:`stock_mlops.core.strategy`) reads account snapshots
and produces order requests; the brokers sit above ``core`` and implement them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from stock_mlops.core.params import AlpacaBrokerParams, LocalBrokerParams

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
    """A holding marked at the broker's current price."""

    symbol: str
    qty: float
    avg_price: float
    market_price: float

    @property
    def market_value(self) -> float:
        """Quantity times the current price."""
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
        """The report as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class AccountSnapshot:
    """Cash, positions and clock at one moment, plus the client order ids the broker knows.

    ``orders`` are the broker's reports of its recent orders (the last days' and every open
    one): their fills and statuses feed the order log's status history and the account report.
    ``as_of`` is the trading date the snapshot was taken for; ``buying_power`` is the broker's
    (the simulated account has no margin: its cash).
    """

    broker: str
    cash: float
    positions: dict[str, Position]
    clock: Clock
    known_client_order_ids: frozenset[str] = field(default_factory=frozenset)
    buying_power: float | None = None
    as_of: dt.date | None = None
    orders: tuple[OrderReport, ...] = ()

    @property
    def equity(self) -> float:
        """Cash plus the market value of every position."""
        return self.cash + sum(p.market_value for p in self.positions.values())

    @property
    def positions_value(self) -> float:
        """The market value of every position."""
        return sum(p.market_value for p in self.positions.values())


@dataclass(frozen=True)
class BrokerRequest:
    """Which broker to reach and as of when: built by a pure node, executed by a dataset.

    ``market_bars`` are the validated daily bars up to ``as_of``: the simulated local broker
    replays the sessions its account has not seen (fills at the open, marks at the close). They
    travel in the request so that the graph shows the edge from ``prices`` to the broker.
    """

    broker: Literal["local", "alpaca"]
    live: bool
    as_of: dt.date
    local: LocalBrokerParams
    alpaca: AlpacaBrokerParams
    market_bars: pd.DataFrame = field(repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """The request without its bars, for the submission records (no secrets in it)."""
        return {
            "broker": self.broker,
            "live": self.live,
            "as_of": self.as_of.isoformat(),
            "local": self.local.model_dump(mode="json"),
            "alpaca": self.alpaca.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class OrderSubmission:
    """The orders one trading run sends, sells first, and the broker to send them to."""

    request: BrokerRequest
    orders: tuple[OrderRequest, ...]
