"""A simulated paper broker. Pure: its whole state is a serialisable dict, market data comes in
through :meth:`LocalPaperBroker.open_session` / :meth:`close_session`.

The daily trading pipeline persists the state through a dataset; the backtest drives the same
class day by day, so live paper trading and the backtest share one execution model:
- ``fill_at: close`` fills a market order at the decision day's close;
- ``fill_at: next_open`` leaves it pending until the next session's open;
- buys pay ``slippage_bps`` above the price, sells receive it below; ``commission_bps`` of the
  notional is charged on every fill; no shorting, no margin.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core.broker_types import (
    AccountSnapshot,
    Clock,
    OrderReport,
    OrderRequest,
    Position,
)

_QTY_EPSILON = 1e-9


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
    ) -> None:
        if fill_at not in ("close", "next_open"):
            raise ValueError(f"fill_at must be 'close' or 'next_open', got '{fill_at}'")
        self.state = state
        self.fill_at = fill_at
        self.commission = commission_bps / 10_000
        self.slippage = slippage_bps / 10_000

    @staticmethod
    def new_state(initial_cash: float) -> dict[str, Any]:
        """A fresh account holding only cash."""
        return {
            "cash": float(initial_cash),
            "initial_cash": float(initial_cash),
            "positions": {},
            "orders": {},
            "pending": [],
            "fills": [],
            "last_prices": {},
            "as_of": None,
        }

    # ------------------------------------------------------------------ market data
    def open_session(self, date: Any, opens: dict[str, float]) -> list[dict[str, Any]]:
        """Fills pending orders at this session's open (sells first, so buys can use the cash).

        Orders whose symbol has no open price today stay pending.
        """
        stamp = pd.Timestamp(date).date().isoformat()
        pending = [self.state["orders"][cid] for cid in self.state["pending"]]
        still_pending, fills = [], []
        for order in sorted(pending, key=lambda o: o["side"] != "sell"):
            price = opens.get(order["symbol"])
            if price is None or not math.isfinite(price) or price <= 0:
                still_pending.append(order["client_order_id"])
                continue
            fill = self._fill(order, price, stamp)
            if fill:
                fills.append(fill)
        self.state["pending"] = still_pending
        return fills

    def close_session(self, date: Any, closes: dict[str, float]) -> None:
        """Records this session's closing prices (used to mark positions and fill at close).

        A missing, NaN or non-positive close is ignored: positions stay marked at the last valid
        one.
        """
        self.state["last_prices"].update(
            {s: float(p) for s, p in closes.items() if p is not None and math.isfinite(p) and p > 0}
        )
        self.state["as_of"] = pd.Timestamp(date).date().isoformat()

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
        return AccountSnapshot(
            broker=self.name,
            cash=self.state["cash"],
            positions=self.positions(),
            clock=self.clock(),
            known_client_order_ids=frozenset(self.state["orders"]),
        )

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
        self.state["orders"][order.client_order_id] = record
        problem = self._check(record)
        if problem:
            record.update(status="rejected", message=problem)
        elif self.fill_at == "close":
            price = self.state["last_prices"].get(order.symbol)
            if price is None:
                record.update(status="rejected", message=f"no closing price for {order.symbol}")
            else:
                self._fill(record, price, self.state["as_of"])
        else:
            self.state["pending"].append(order.client_order_id)
        return _report(record)

    # ------------------------------------------------------------------------ internals
    def _check(self, record: dict[str, Any]) -> str:
        if not record["qty"] > 0:
            return f"quantity must be positive, got {record['qty']}"
        if record["side"] == "sell":
            held = self.state["positions"].get(record["symbol"], {}).get("qty", 0.0)
            if record["qty"] > held + _QTY_EPSILON:
                return f"cannot sell {record['qty']} {record['symbol']}: only {held} held"
        return ""

    def _fill(self, record: dict[str, Any], price: float, date: str) -> dict[str, Any] | None:
        symbol, side, qty = record["symbol"], record["side"], record["qty"]
        fill_price = price * (1 + self.slippage) if side == "buy" else price * (1 - self.slippage)
        cash = self.state["cash"]
        positions = self.state["positions"]
        if side == "buy":
            affordable = cash / (fill_price * (1 + self.commission))
            if affordable + _QTY_EPSILON < qty:
                qty = math.floor(affordable) if float(qty).is_integer() else affordable
                record["message"] = "remainder expired: insufficient cash at fill"
            if qty <= 0:
                record.update(status="canceled", message="insufficient cash at fill")
                return None
        else:
            # Another pending sell may have emptied the position since this one was accepted.
            held_qty = positions.get(symbol, {}).get("qty", 0.0)
            if held_qty <= _QTY_EPSILON:
                record.update(status="canceled", message=f"no {symbol} left to sell at fill")
                return None
            if held_qty + _QTY_EPSILON < qty:
                qty = held_qty
                record["message"] = f"remainder expired: only {held_qty} {symbol} held at fill"
        notional = qty * fill_price
        fee = notional * self.commission
        realized = None
        if side == "sell":
            realized = (fill_price - positions[symbol]["avg_price"]) * qty - fee
        if side == "buy":
            held = positions.setdefault(symbol, {"qty": 0.0, "avg_price": 0.0})
            total = held["qty"] + qty
            held["avg_price"] = (held["avg_price"] * held["qty"] + notional) / total
            held["qty"] = total
            self.state["cash"] = cash - notional - fee
        else:
            held = positions[symbol]
            held["qty"] -= qty
            if held["qty"] <= _QTY_EPSILON:
                del positions[symbol]
            self.state["cash"] = cash + notional - fee
        # The simulated market has one fill per order: a short fill is final, its remainder
        # expires (Alpaca's "partially_filled" would mean the order is still working).
        record.update(
            status="filled" if qty + _QTY_EPSILON >= record["qty"] else "expired",
            filled_qty=qty,
            filled_avg_price=fill_price,
            fee=fee,
            filled_at=date,
        )
        fill = {
            "date": date,
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "price": fill_price,
            "fee": fee,
            "realized_pnl": realized,
            "client_order_id": record["client_order_id"],
        }
        self.state["fills"].append(fill)
        return fill


def _report(record: dict[str, Any]) -> OrderReport:
    return OrderReport(**record)
