"""The broker interface shared by the simulated local broker and Alpaca's paper API.

The values brokers exchange (snapshots, order requests and reports) are defined in
:mod:`stock_mlops.core.broker_types`, below this package, so that the trading rule can use them.
"""

from __future__ import annotations

from typing import Protocol

from stock_mlops.core.broker_types import (
    AccountSnapshot,
    BrokerError,
    Clock,
    OrderReport,
    OrderRequest,
    Position,
)

__all__ = [
    "AccountSnapshot",
    "Broker",
    "BrokerError",
    "Clock",
    "OrderReport",
    "OrderRequest",
    "Position",
]


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
