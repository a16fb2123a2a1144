"""A simulated paper broker. Pure: its whole state is a serialisable dict, market data comes in
through :meth:`LocalPaperBroker.open_session` / :meth:`close_session`.

The daily trading pipeline persists the state through a dataset; the backtest drives the same
class day by day, so live paper trading and the backtest share one execution model:
- ``fill_at: close`` fills a market order at the decision day's close;
- ``fill_at: next_open`` leaves it pending until the next session's open;
- buys pay ``slippage_bps`` above the price, sells receive it below; ``commission_bps`` of the
  notional is charged on every fill; no shorting, no margin.

Every change of the state is an *event* applied by :func:`apply_event` (``opened``: the initial
cash deposit; ``mark``: a session's closes; ``order``: an order accepted or rejected; ``fill``: a
fill with its cash movement; ``cancel``; ``restored``: a whole state taken over from an account
file written before the journal existed). A broker created with ``journal=True`` keeps the events
it applied in :attr:`LocalPaperBroker.events`, and :func:`replay` rebuilds the exact state from
them: the trading datasets store those events in an append-only journal, the source of truth of
the account, and the state file is only a cache of the replay.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import itertools
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core.broker_types import (
    FINAL_STATES,
    AccountSnapshot,
    Clock,
    OrderReport,
    OrderRequest,
    Position,
)
from stock_mlops.core.symbols import is_valid_symbol

_QTY_EPSILON = 1e-9
# Orders submitted this many calendar days before the account's date are listed in a snapshot
# (with every order still open), as Alpaca's recent orders are.
RECENT_ORDER_DAYS = 10
EVENT_KINDS = ("opened", "mark", "order", "fill", "cancel", "restored")


class JournalError(ValueError):
    """An event cannot be applied (unknown kind, an order that does not exist)."""


def _empty_state() -> dict[str, Any]:
    return {
        "cash": 0.0,
        "initial_cash": 0.0,
        "positions": {},
        "orders": {},
        "pending": [],
        "fills": [],
        "last_prices": {},
        "as_of": None,
    }


def apply_event(state: dict[str, Any], event: dict[str, Any]) -> None:
    """Applies one journal event to ``state`` in place (the only way the live broker changes).

    Args:
        state: A broker state (see :meth:`LocalPaperBroker.new_state`).
        event: One event (see the module docstring).

    Raises:
        JournalError: For an unknown kind or an event about an order the state does not hold.
    """
    kind = event.get("kind")
    if kind == "opened":
        state["cash"] = float(event["cash"])
        state["initial_cash"] = float(event["cash"])
    elif kind == "mark":
        state["last_prices"].update(event["closes"])
        state["as_of"] = event["date"]
    elif kind == "order":
        record = dict(event["order"])
        state["orders"][record["client_order_id"]] = record
        if record["status"] == "accepted":
            state["pending"].append(record["client_order_id"])
    elif kind == "fill":
        _apply_fill(state, event)
    elif kind == "cancel":
        record = _order_of(state, event)
        record.update(status=event["status"], message=event["message"])
        _drop_pending(state, record["client_order_id"])
    elif kind == "restored":
        state.clear()
        state.update(copy.deepcopy(event["state"]))
    else:
        raise JournalError(f"unknown journal event kind {kind!r} (known: {', '.join(EVENT_KINDS)})")


def _order_of(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    record = state["orders"].get(event["client_order_id"])
    if record is None:
        raise JournalError(f"{event['kind']} event for unknown order {event['client_order_id']}")
    return record


def _drop_pending(state: dict[str, Any], client_order_id: str) -> None:
    if client_order_id in state["pending"]:
        state["pending"].remove(client_order_id)


def _apply_fill(state: dict[str, Any], event: dict[str, Any]) -> None:
    record = _order_of(state, event)
    symbol, side, qty, price = record["symbol"], record["side"], event["qty"], event["price"]
    positions = state["positions"]
    if side == "buy":
        held = positions.setdefault(symbol, {"qty": 0.0, "avg_price": 0.0})
        total = held["qty"] + qty
        held["avg_price"] = (held["avg_price"] * held["qty"] + qty * price) / total
        held["qty"] = total
    else:
        held = positions[symbol]
        held["qty"] -= qty
        if held["qty"] <= _QTY_EPSILON:
            del positions[symbol]
    state["cash"] += event["cash_delta"]
    record.update(
        status=event["status"],
        filled_qty=qty,
        filled_avg_price=price,
        fee=event["fee"],
        filled_at=event["date"],
        message=event["message"],
    )
    _drop_pending(state, record["client_order_id"])
    state["fills"].append(
        {
            "date": event["date"],
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "price": price,
            "fee": event["fee"],
            "realized_pnl": event["realized_pnl"],
            "client_order_id": record["client_order_id"],
        }
    )


def replay(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The state a journal describes: every event applied in order to an empty account.

    Args:
        events: The journal's events, oldest first.

    Returns:
        The broker state.
    """
    state = _empty_state()
    for event in events:
        apply_event(state, event)
    return state


class _OrderIndex:
    """The orders of one state sorted by submission date, and those that may still be open.

    :meth:`LocalPaperBroker.recent_orders` runs for every snapshot, i.e. every session of a
    backtest: scanning every order ever placed each time made the backtest quadratic in its
    length. Orders are only ever added to a state (a ``restored`` event replaces the whole
    ``orders`` dict, which rebuilds the index) and an order's status only moves from open to
    final, so new orders are indexed as they appear and open ones are re-checked when asked.
    """

    def __init__(self, orders: dict[str, dict[str, Any]]) -> None:
        self.orders = orders
        self.dates: list[str] = []  # sorted submission dates ...
        self.ids: list[str] = []  # ... and the order ids in the same order
        self.position: dict[str, int] = {}  # an order's place in ``orders`` (its output order)
        self.open: set[str] = set()
        self._add(orders.items())

    def _add(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for client_order_id, record in items:
            date = str(record.get("submitted_at") or "")
            at = bisect.bisect_right(self.dates, date)
            self.dates.insert(at, date)
            self.ids.insert(at, client_order_id)
            self.position[client_order_id] = len(self.position)
            if record["status"] not in FINAL_STATES:
                self.open.add(client_order_id)

    def current(self, orders: dict[str, dict[str, Any]]) -> bool:
        """Brings the index up to date with ``orders``; False if it must be rebuilt instead."""
        if orders is not self.orders or len(orders) < len(self.position):
            return False
        new = len(orders) - len(self.position)
        if new:  # the newest orders are the last ones of the dict
            self._add(reversed(list(itertools.islice(reversed(orders.items()), new))))
        return True

    def since(self, date: str | None) -> list[str]:
        """Ids of the orders submitted on or after ``date`` and of every open order, in the
        order they were placed (all of them when ``date`` is None)."""
        if date is None:
            return list(self.orders)
        chosen = set(self.ids[bisect.bisect_left(self.dates, date) :])
        for client_order_id in list(self.open):
            if self.orders[client_order_id]["status"] in FINAL_STATES:
                self.open.discard(client_order_id)
            else:
                chosen.add(client_order_id)
        return sorted(chosen, key=self.position.__getitem__)


class LocalPaperBroker:
    """The simulated broker (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        state: dict[str, Any],
        *,
        fill_at: str = "close",
        commission_bps: float = 0.0,
        slippage_bps: float = 0.0,
        journal: bool = False,
    ) -> None:
        if fill_at not in ("close", "next_open"):
            raise ValueError(f"fill_at must be 'close' or 'next_open', got '{fill_at}'")
        self.state = state
        self.fill_at = fill_at
        self.commission = commission_bps / 10_000
        self.slippage = slippage_bps / 10_000
        # The events applied since creation (kept only when journaled: the backtest applies
        # thousands of marks that nobody stores).
        self.journal = journal
        self.events: list[dict[str, Any]] = []
        self._index: _OrderIndex | None = None

    @staticmethod
    def new_state(initial_cash: float) -> dict[str, Any]:
        """A fresh account holding only cash."""
        state = _empty_state()
        apply_event(state, {"kind": "opened", "cash": float(initial_cash)})
        return state

    @classmethod
    def open_account(cls, initial_cash: float, **kwargs: Any) -> LocalPaperBroker:
        """A fresh journaled account: its first event is the deposit of ``initial_cash``."""
        broker = cls(_empty_state(), journal=True, **kwargs)
        broker._apply({"kind": "opened", "cash": float(initial_cash)})
        return broker

    def _apply(self, event: dict[str, Any]) -> None:
        apply_event(self.state, event)
        if self.journal:
            self.events.append(event)

    # ------------------------------------------------------------------ market data
    def open_session(self, date: Any, opens: dict[str, float]) -> list[dict[str, Any]]:
        """Fills pending orders at this session's open (sells first, so buys can use the cash).

        Orders whose symbol has no open price today stay pending.
        """
        stamp = pd.Timestamp(date).date().isoformat()
        pending = [self.state["orders"][cid] for cid in self.state["pending"]]
        fills = []
        for order in sorted(pending, key=lambda o: o["side"] != "sell"):
            price = opens.get(order["symbol"])
            if price is None or not math.isfinite(price) or price <= 0:
                continue  # stays pending
            fill = self._fill(order, price, stamp)
            if fill:
                fills.append(fill)
        return fills

    def close_session(self, date: Any, closes: dict[str, float]) -> None:
        """Records this session's closing prices (used to mark positions and fill at close).

        A missing, NaN or non-positive close is ignored: positions stay marked at the last valid
        one.
        """
        valid = {
            s: float(p) for s, p in closes.items() if p is not None and math.isfinite(p) and p > 0
        }
        self._apply(
            {"kind": "mark", "date": pd.Timestamp(date).date().isoformat(), "closes": valid}
        )

    # ----------------------------------------------------------------- broker interface
    def clock(self) -> Clock:
        as_of = self.state["as_of"]
        if as_of is None:
            raise RuntimeError("the local broker has seen no market data yet")
        day = pd.Timestamp(as_of)
        session = day if self.fill_at == "close" else calendar.next_session(day)
        return Clock(
            timestamp=dt.datetime.combine(day.date(), dt.time(21, 0), tzinfo=dt.UTC),
            is_open=calendar.is_session(day),
            execution_session=session.date(),
        )

    def positions(self) -> dict[str, Position]:
        prices = self.state["last_prices"]
        return {
            symbol: Position(
                symbol=symbol,
                qty=p["qty"],
                avg_price=p["avg_price"],
                market_price=prices.get(symbol, p["avg_price"]),
            )
            for symbol, p in self.state["positions"].items()
        }

    def account(self) -> AccountSnapshot:
        as_of = self.state["as_of"]
        return AccountSnapshot(
            broker=self.name,
            cash=self.state["cash"],
            positions=self.positions(),
            clock=self.clock(),
            known_client_order_ids=frozenset(self.state["orders"]),
            # No margin: the simulated account can spend its cash and nothing more.
            buying_power=self.state["cash"],
            as_of=None if as_of is None else dt.date.fromisoformat(as_of),
            orders=tuple(self.recent_orders()),
        )

    def recent_orders(self, days: int = RECENT_ORDER_DAYS) -> list[OrderReport]:
        """Orders submitted in the last ``days`` calendar days, and every order still open."""
        as_of = self.state["as_of"]
        since = (
            None
            if as_of is None
            else (dt.date.fromisoformat(as_of) - dt.timedelta(days=days)).isoformat()
        )
        orders = self.state["orders"]
        if self._index is None or not self._index.current(orders):
            self._index = _OrderIndex(orders)
        return [_report(orders[client_order_id]) for client_order_id in self._index.since(since)]

    def equity(self) -> float:
        """Cash plus positions at the last closing prices (the same sum as the snapshot's)."""
        prices = self.state["last_prices"]
        held = sum(
            p["qty"] * prices.get(symbol, p["avg_price"])
            for symbol, p in self.state["positions"].items()
        )
        return self.state["cash"] + held

    def get_order_by_client_id(self, client_order_id: str) -> OrderReport | None:
        order = self.state["orders"].get(client_order_id)
        return _report(order) if order else None

    def submit_order(self, order: OrderRequest) -> OrderReport:
        existing = self.state["orders"].get(order.client_order_id)
        if existing is not None:
            return _report(existing)
        record = {
            "client_order_id": order.client_order_id,
            "broker_order_id": f"local-{len(self.state['orders']) + 1}",
            "symbol": order.symbol,
            "side": order.side,
            "qty": float(order.qty),
            "status": "accepted",
            "filled_qty": 0.0,
            "filled_avg_price": None,
            "fee": 0.0,
            "submitted_at": self.state["as_of"],
            "filled_at": None,
            "message": "",
        }
        problem = self._check(record)
        price = self.state["last_prices"].get(order.symbol)
        if not problem and self.fill_at == "close" and price is None:
            problem = f"no closing price for {order.symbol}"
        if problem:
            record.update(status="rejected", message=problem)
        self._apply({"kind": "order", "order": record})
        record = self.state["orders"][order.client_order_id]
        if not problem and self.fill_at == "close":
            self._fill(record, price, self.state["as_of"])
        return _report(self.state["orders"][order.client_order_id])

    # ------------------------------------------------------------------------ internals
    def _check(self, record: dict[str, Any]) -> str:
        if not is_valid_symbol(record["symbol"]):
            return f"{record['symbol']!r} is not a valid symbol"
        if not record["qty"] > 0:
            return f"quantity must be positive, got {record['qty']}"
        if record["side"] == "sell":
            held = self.state["positions"].get(record["symbol"], {}).get("qty", 0.0)
            if record["qty"] > held + _QTY_EPSILON:
                return f"cannot sell {record['qty']} {record['symbol']}: only {held} held"
        return ""

    def _fill(self, record: dict[str, Any], price: float, date: str) -> dict[str, Any] | None:
        """Fills ``record`` at ``price`` (before slippage) as far as cash or holdings allow."""
        cid, symbol, side, qty = (record[k] for k in ("client_order_id", "symbol", "side", "qty"))
        fill_price = price * (1 + self.slippage) if side == "buy" else price * (1 - self.slippage)
        positions = self.state["positions"]
        message = record["message"]
        if side == "buy":
            affordable = self.state["cash"] / (fill_price * (1 + self.commission))
            if affordable + _QTY_EPSILON < qty:
                qty = math.floor(affordable) if float(qty).is_integer() else affordable
                message = "remainder expired: insufficient cash at fill"
            if qty <= 0:
                self._cancel(cid, "insufficient cash at fill")
                return None
        else:
            # Another pending sell may have emptied the position since this one was accepted.
            held_qty = positions.get(symbol, {}).get("qty", 0.0)
            if held_qty <= _QTY_EPSILON:
                self._cancel(cid, f"no {symbol} left to sell at fill")
                return None
            if held_qty + _QTY_EPSILON < qty:
                qty = held_qty
                message = f"remainder expired: only {held_qty} {symbol} held at fill"
        notional = qty * fill_price
        fee = notional * self.commission
        realized = None
        if side == "sell":
            realized = (fill_price - positions[symbol]["avg_price"]) * qty - fee
        self._apply(
            {
                "kind": "fill",
                "client_order_id": cid,
                "date": date,
                "qty": qty,
                "price": fill_price,
                "fee": fee,
                # The cash movement of this fill, stated once so the journal shows it.
                "cash_delta": -notional - fee if side == "buy" else notional - fee,
                "realized_pnl": realized,
                # One fill per order in the simulated market: a short fill is final and its
                # remainder expires (Alpaca's "partially_filled" means still working).
                "status": "filled" if qty + _QTY_EPSILON >= record["qty"] else "expired",
                "message": message,
            }
        )
        return self.state["fills"][-1]

    def _cancel(self, client_order_id: str, message: str) -> None:
        self._apply(
            {
                "kind": "cancel",
                "client_order_id": client_order_id,
                "status": "canceled",
                "message": message,
            }
        )


def _report(record: dict[str, Any]) -> OrderReport:
    return OrderReport(**record)
