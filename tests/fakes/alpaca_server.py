"""A loopback fake of Alpaca's trading and market-data REST APIs, for tests.

It speaks exactly the endpoints alpaca-py 0.44 calls for this project, with Alpaca's payload
shapes (trading figures as strings, bar figures as numbers, nanosecond clock stamps) and error
bodies (``{"code": ..., "message": ...}``):

- ``GET /v2/account``, ``GET /v2/clock``, ``GET /v2/positions``
- ``POST /v2/orders`` (422 on a duplicate ``client_order_id``, 403 beyond buying power),
  ``GET /v2/orders`` (status/limit/after/until/direction/symbols/side filters),
  ``GET /v2/orders:by_client_order_id``, ``GET /v2/orders/{id}``, ``DELETE /v2/orders/{id}``,
  ``DELETE /v2/orders``
- ``GET /v2/stocks/bars`` (multi-symbol bars with ``next_page_token`` pagination)

Tests script failures (:meth:`FakeAlpacaServer.fail_next`, :meth:`FakeAlpacaServer.slow_next`),
switch the market clock (:meth:`FakeAlpacaServer.set_clock`), fill or expire orders, and read
back every request received (:attr:`FakeAlpacaServer.requests`). It binds 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd

logger = logging.getLogger(__name__)

API_KEY = "PKTEST0000FAKEKEY"
SECRET_KEY = "fake-secret-never-in-messages-0123456789"
NEW_YORK = ZoneInfo("America/New_York")

# Alpaca's own statuses that count as "open" for GET /v2/orders?status=open.
OPEN_ORDER_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "partially_filled",
        "accepted_for_bidding",
        "pending_review",
        "held",
        "pending_cancel",
        "pending_replace",
        "done_for_day",
        "calculated",
        "stopped",
    }
)
BAR_ADJUSTMENTS = frozenset({"raw", "split", "dividend", "all"})
BAR_FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
BAR_TIMEFRAMES = frozenset({"1Day"})
_ORDER_PATH = re.compile(r"^/v2/orders/(?P<order_id>[0-9a-fA-F-]{36})$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (the secret header is never kept)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool


@dataclass
class _Script:
    method: str
    path: str
    status: int | None
    payload: dict[str, Any]
    delay: float
    process: bool
    times: int
    skip: int


class _ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        body = {"code": code, "message": message} if code is not None else {"message": message}
        self.status = status
        self.payload = {**extra, **body}


def _num(value: float) -> str:
    """Alpaca's decimal strings: no exponent, no trailing zeros ("100000", "185.64")."""
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _utc_stamp(moment: dt.datetime) -> str:
    """Order timestamps as Alpaca writes them: UTC with microseconds and a Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clock_stamp(moment: dt.datetime) -> str:
    """Clock timestamps as Alpaca writes them: New York offset, nanoseconds."""
    local = moment.astimezone(NEW_YORK)
    offset = local.isoformat()[-6:]
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond:06d}000{offset}"


def _parse_time(text: str) -> dt.datetime:
    moment = pd.Timestamp(text)
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return moment.to_pydatetime()


def bars_from_frame(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Alpaca daily bars from a ``date, open, high, low, close, volume`` frame.

    Alpaca stamps a daily bar at midnight New York time in UTC (04:00Z in summer, 05:00Z in
    winter); ``n`` (trade count) and ``vw`` (VWAP) are filled plausibly.
    """
    bars = []
    for row in frame.sort_values("date").itertuples(index=False):
        midnight = pd.Timestamp(row.date).tz_localize(NEW_YORK)
        bars.append(
            {
                "t": midnight.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                "o": round(float(row.open), 4),
                "h": round(float(row.high), 4),
                "l": round(float(row.low), 4),
                "c": round(float(row.close), 4),
                "v": int(row.volume),
                "n": max(1, int(row.volume) // 90),
                "vw": round((float(row.high) + float(row.low) + float(row.close)) / 3, 6),
            }
        )
    return bars


class FakeAlpacaServer:
    """The fake service: state, scripting and the HTTP server thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        cash: float = 100_000.0,
        bar_page_size: int = 10_000,
        sip_allowed: bool = True,
        api_key: str = API_KEY,
        secret_key: str = SECRET_KEY,
    ) -> None:
        self.api_key = api_key
        self.secret_key = secret_key
        self.bar_page_size = bar_page_size
        self.sip_allowed = sip_allowed
        self.account_id = str(uuid.uuid4())
        self.cash = float(cash)
        self.prices: dict[str, float] = {}
        self.positions: dict[str, dict[str, float]] = {}
        self.bars: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self._orders: dict[str, dict[str, Any]] = {}
        self._scripts: list[_Script] = []
        self._asset_ids: dict[str, str] = {}
        self._sequence = 0
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        # Friday 2023-12-29 after the close: the next session is Tuesday 2024-01-02.
        self.set_clock(
            dt.datetime(2023, 12, 29, 17, 5, tzinfo=NEW_YORK),
            is_open=False,
            next_open=dt.datetime(2024, 1, 2, 9, 30, tzinfo=NEW_YORK),
            next_close=dt.datetime(2024, 1, 2, 16, 0, tzinfo=NEW_YORK),
        )

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> FakeAlpacaServer:
        """Starts serving on 127.0.0.1 with a free port."""
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-alpaca",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving; wakes handlers still sleeping in a scripted delay."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAlpacaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to pass as alpaca-py's ``url_override``."""
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------------ set-up
    def set_clock(
        self,
        timestamp: dt.datetime,
        *,
        is_open: bool,
        next_open: dt.datetime,
        next_close: dt.datetime | None = None,
    ) -> None:
        """Sets the market clock (aware datetimes); orders are stamped with this time."""
        with self._lock:
            self.now = timestamp
            self.is_open = is_open
            self.next_open = next_open
            self.next_close = next_close or next_open.replace(hour=16, minute=0)

    def set_price(self, symbol: str, price: float) -> None:
        """The current price of a symbol (marks positions, checks buying power)."""
        with self._lock:
            self.prices[symbol] = float(price)

    def add_position(self, symbol: str, qty: float, avg_entry_price: float, price: float) -> None:
        """Seeds a long position."""
        with self._lock:
            self.positions[symbol] = {"qty": float(qty), "avg_entry_price": float(avg_entry_price)}
            self.prices[symbol] = float(price)

    def set_bars(self, symbol: str, bars: list[dict[str, Any]] | pd.DataFrame) -> None:
        """Daily bars served for ``symbol``: Alpaca dicts, or a date/OHLCV frame."""
        with self._lock:
            self.bars[symbol] = bars_from_frame(bars) if isinstance(bars, pd.DataFrame) else bars

    # ------------------------------------------------------------------------ scripting
    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        *,
        code: int | None = None,
        times: int = 1,
        skip: int = 0,
        **extra: Any,
    ) -> None:
        """After ``skip`` matching requests, the next ``times`` get this error and no effect."""
        payload = {**extra, "code": code, "message": message} if code else {"message": message}
        with self._lock:
            self._scripts.append(_Script(method, path, status, payload, 0.0, False, times, skip))

    def slow_next(
        self, method: str, path: str, seconds: float, *, process: bool, skip: int = 0
    ) -> None:
        """After ``skip`` matching requests, the next one is answered ``seconds`` late.

        With ``process`` the request takes effect at once and only the answer is late (the
        ambiguous case: the client times out, the order exists). Without it the request is lost
        and a late 503 follows.
        """
        payload = {"message": "service unavailable"}
        status = None if process else HTTPStatus.SERVICE_UNAVAILABLE
        with self._lock:
            self._scripts.append(_Script(method, path, status, payload, seconds, process, 1, skip))

    def _take_script(self, method: str, path: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.method != method or script.path != path:
                    continue
                if script.skip > 0:
                    script.skip -= 1
                    continue
                script.times -= 1
                if script.times <= 0:
                    self._scripts.remove(script)
                return script
        return None

    # ------------------------------------------------------------------------ inspection
    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Received requests with this method and path (query excluded)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Every order in the book, oldest first, as Alpaca would return it."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._orders.values()]

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._find_client_id(client_order_id)
            return copy.deepcopy(found) if found else None

    def fill_order(self, order_id: str, price: float, qty: float | None = None) -> None:
        """Fills an open order (fully unless ``qty``) and books the position and cash."""
        with self._lock:
            order = self._orders[order_id]
            ordered = float(order["qty"])
            done = float(order["filled_qty"])
            fill = min(ordered - done, qty if qty is not None else ordered)
            symbol, sign = order["symbol"], 1 if order["side"] == "buy" else -1
            held = self.positions.setdefault(symbol, {"qty": 0.0, "avg_entry_price": 0.0})
            if sign > 0:
                total = held["qty"] + fill
                held["avg_entry_price"] = (held["avg_entry_price"] * held["qty"] + price * fill) / (
                    total
                )
                held["qty"] = total
            else:
                held["qty"] -= fill
                if held["qty"] <= 1e-9:
                    del self.positions[symbol]
            self.cash -= sign * fill * price
            self.prices.setdefault(symbol, price)
            filled = done + fill
            previous = float(order["filled_avg_price"] or 0.0)
            order["filled_avg_price"] = _num((previous * done + price * fill) / filled)
            order["filled_qty"] = _num(filled)
            order["status"] = "filled" if filled >= ordered - 1e-9 else "partially_filled"
            order["filled_at"] = order["updated_at"] = _utc_stamp(self.now)

    def set_order_status(self, order_id: str, status: str) -> None:
        """Forces an Alpaca status (e.g. ``done_for_day``, ``expired``) on an order."""
        with self._lock:
            self._orders[order_id]["status"] = status
            self._orders[order_id]["updated_at"] = _utc_stamp(self.now)

    # ------------------------------------------------------------------------ rendering
    def account_json(self) -> dict[str, Any]:
        with self._lock:
            long_value = sum(
                p["qty"] * self.prices.get(s, p["avg_entry_price"])
                for s, p in self.positions.items()
            )
            equity = self.cash + long_value
            buying_power = max(self.cash - self._reserved_cash(), 0.0)
            return {
                "id": self.account_id,
                "admin_configurations": {},
                "user_configurations": None,
                "account_number": "PA3FAKE00001",
                "status": "ACTIVE",
                "crypto_status": "ACTIVE",
                "options_approved_level": 2,
                "options_trading_level": 2,
                "currency": "USD",
                "buying_power": _num(buying_power),
                "regt_buying_power": _num(buying_power),
                "daytrading_buying_power": "0",
                "effective_buying_power": _num(buying_power),
                "non_marginable_buying_power": _num(buying_power),
                "options_buying_power": _num(buying_power),
                "bod_dtbp": "0",
                "cash": _num(self.cash),
                "accrued_fees": "0",
                "portfolio_value": _num(equity),
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "created_at": "2023-06-01T14:02:11.123456Z",
                "trade_suspended_by_user": False,
                "multiplier": "1",
                "shorting_enabled": False,
                "equity": _num(equity),
                "last_equity": _num(equity),
                "long_market_value": _num(long_value),
                "short_market_value": "0",
                "position_market_value": _num(long_value),
                "initial_margin": "0",
                "maintenance_margin": "0",
                "last_maintenance_margin": "0",
                "sma": "0",
                "daytrade_count": 0,
                "balance_asof": (self.now.astimezone(NEW_YORK).date()).isoformat(),
                "crypto_tier": 1,
                "intraday_adjustments": "0",
                "pending_reg_taf_fees": "0",
            }

    def clock_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "timestamp": _clock_stamp(self.now),
                "is_open": self.is_open,
                "next_open": self.next_open.astimezone(NEW_YORK).isoformat(),
                "next_close": self.next_close.astimezone(NEW_YORK).isoformat(),
            }

    def positions_json(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for symbol, held in sorted(self.positions.items()):
                qty, cost = held["qty"], held["avg_entry_price"]
                price = self.prices.get(symbol, cost)
                rows.append(
                    {
                        "asset_id": self._asset_id(symbol),
                        "symbol": symbol,
                        "exchange": "NASDAQ",
                        "asset_class": "us_equity",
                        "asset_marginable": True,
                        "qty": _num(qty),
                        "avg_entry_price": _num(cost),
                        "side": "long",
                        "market_value": _num(qty * price),
                        "cost_basis": _num(qty * cost),
                        "unrealized_pl": _num(qty * (price - cost)),
                        "unrealized_plpc": _num(price / cost - 1 if cost else 0.0),
                        "unrealized_intraday_pl": "0",
                        "unrealized_intraday_plpc": "0",
                        "current_price": _num(price),
                        "lastday_price": _num(price),
                        "change_today": "0",
                        "qty_available": _num(qty),
                    }
                )
            return rows

    def _asset_id(self, symbol: str) -> str:
        return self._asset_ids.setdefault(symbol, str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)))

    def _reserved_cash(self) -> float:
        return sum(
            (float(o["qty"]) - float(o["filled_qty"])) * self.prices.get(o["symbol"], 0.0)
            for o in self._orders.values()
            if o["side"] == "buy" and o["status"] in OPEN_ORDER_STATUSES
        )

    def _find_client_id(self, client_order_id: str) -> dict[str, Any] | None:
        return next(
            (o for o in self._orders.values() if o["client_order_id"] == client_order_id), None
        )

    # ------------------------------------------------------------------------ endpoints
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        """Routes one authorised request; returns ``(status, JSON payload or None)``."""
        with self._lock:
            routes = {
                ("GET", "/v2/account"): lambda: (200, self.account_json()),
                ("GET", "/v2/clock"): lambda: (200, self.clock_json()),
                ("GET", "/v2/positions"): lambda: (200, self.positions_json()),
                ("POST", "/v2/orders"): lambda: self._create_order(body),
                ("GET", "/v2/orders"): lambda: (200, self._list_orders(query)),
                ("DELETE", "/v2/orders"): self._cancel_all,
                ("GET", "/v2/orders:by_client_order_id"): lambda: self._by_client_id(query),
                ("GET", "/v2/stocks/bars"): lambda: (200, self._stock_bars(query)),
            }
            route = routes.get((method, path))
            if route is not None:
                return route()
            match = _ORDER_PATH.match(path)
            if match and method == "GET":
                return 200, self._order(match["order_id"])
            if match and method == "DELETE":
                return self._cancel(match["order_id"])
            raise _ApiError(404, "Not Found")

    def _create_order(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise _ApiError(400, "request body format is invalid", code=40010000)
        symbol, side = body.get("symbol"), body.get("side")
        if not symbol or side not in ("buy", "sell"):
            raise _ApiError(422, "invalid order: symbol and side are required", code=40010001)
        if body.get("type") != "market":
            raise _ApiError(422, "this fake only accepts market orders", code=40010001)
        if body.get("notional") is not None or body.get("qty") is None:
            raise _ApiError(422, "qty is required", code=40010001)
        qty = float(body["qty"])
        if not qty > 0:
            raise _ApiError(422, "qty must be > 0", code=40010001)
        tif = body.get("time_in_force")
        if tif not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            raise _ApiError(422, "invalid time_in_force", code=40010001)
        if not float(qty).is_integer() and tif != "day":
            raise _ApiError(422, "fractional orders must be DAY orders", code=40010001)
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if len(client_order_id) > 128:
            raise _ApiError(422, "client_order_id must be no more than 128 characters", 40010001)
        if self._find_client_id(client_order_id) is not None:
            raise _ApiError(422, "client_order_id must be unique", code=40010001)
        price = self.prices.get(symbol)
        if side == "buy" and price is not None:
            cost = qty * price
            available = max(self.cash - self._reserved_cash(), 0.0)
            if cost > available + 1e-6:
                raise _ApiError(
                    403,
                    "insufficient buying power",
                    code=40310000,
                    buying_power=_num(available),
                    cost_basis=_num(cost),
                )
        self._sequence += 1
        # Distinct, increasing stamps so that sorting by submission time is well defined.
        stamp = _utc_stamp(self.now + dt.timedelta(microseconds=self._sequence))
        expires = self.next_close if not self.is_open else self.now.replace(hour=16, minute=0)
        order = {
            "id": str(uuid.uuid4()),
            "client_order_id": client_order_id,
            "created_at": stamp,
            "updated_at": stamp,
            "submitted_at": stamp,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": self._asset_id(symbol),
            "symbol": symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(qty),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": "",
            "order_type": "market",
            "type": "market",
            "side": side,
            "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
            "time_in_force": tif,
            "limit_price": None,
            "stop_price": None,
            # A market order placed while the market is closed waits, accepted, for the open.
            "status": "new" if self.is_open else "accepted",
            "extended_hours": bool(body.get("extended_hours", False)),
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "subtag": None,
            "source": None,
            "expires_at": _utc_stamp(expires),
        }
        self._orders[order["id"]] = order
        return 200, copy.deepcopy(order)

    def _list_orders(self, query: dict[str, str]) -> list[dict[str, Any]]:
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise _ApiError(422, f"invalid status: {status}", code=40010001)
        limit = int(query.get("limit", 50))
        if not 1 <= limit <= 500:
            raise _ApiError(422, "limit must be between 1 and 500", code=40010001)
        rows = list(self._orders.values())
        if status != "all":
            want_open = status == "open"
            rows = [o for o in rows if (o["status"] in OPEN_ORDER_STATUSES) == want_open]
        if "after" in query:
            after = _parse_time(query["after"])
            rows = [o for o in rows if _parse_time(o["submitted_at"]) > after]
        if "until" in query:
            until = _parse_time(query["until"])
            rows = [o for o in rows if _parse_time(o["submitted_at"]) < until]
        if "symbols" in query:
            wanted = set(query["symbols"].split(","))
            rows = [o for o in rows if o["symbol"] in wanted]
        if "side" in query:
            rows = [o for o in rows if o["side"] == query["side"]]
        descending = query.get("direction", "desc") == "desc"
        rows.sort(key=lambda o: o["submitted_at"], reverse=descending)
        return [copy.deepcopy(o) for o in rows[:limit]]

    def _by_client_id(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        order = self._find_client_id(query.get("client_order_id", ""))
        if order is None:
            raise _ApiError(404, "order not found", code=40410000)
        return 200, copy.deepcopy(order)

    def _order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self._orders:
            raise _ApiError(404, f"order not found for {order_id}", code=40410000)
        return copy.deepcopy(self._orders[order_id])

    def _cancel(self, order_id: str) -> tuple[int, None]:
        order = self._orders.get(order_id)
        if order is None:
            raise _ApiError(404, f"order not found for {order_id}", code=40410000)
        if order["status"] not in OPEN_ORDER_STATUSES:
            raise _ApiError(422, f'order is already in "{order["status"]}" state', 42210000)
        order["status"] = "canceled"
        order["canceled_at"] = order["updated_at"] = _utc_stamp(self.now)
        return 204, None

    def _cancel_all(self) -> tuple[int, list[dict[str, Any]]]:
        results = []
        for order_id, order in self._orders.items():
            if order["status"] in OPEN_ORDER_STATUSES:
                self._cancel(order_id)
                results.append({"id": order_id, "status": 200, "body": copy.deepcopy(order)})
        return 207, results

    def _stock_bars(self, query: dict[str, str]) -> dict[str, Any]:
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            raise _ApiError(400, "missing symbols")
        timeframe = query.get("timeframe")
        if timeframe not in BAR_TIMEFRAMES:
            raise _ApiError(400, f"invalid timeframe: {timeframe}")
        adjustment = query.get("adjustment", "raw")
        if adjustment not in BAR_ADJUSTMENTS:
            raise _ApiError(400, f"invalid adjustment: {adjustment}")
        feed = query.get("feed", "sip")
        if feed not in BAR_FEEDS:
            raise _ApiError(400, f"invalid feed: {feed}")
        if feed == "sip" and not self.sip_allowed:
            raise _ApiError(403, "subscription does not permit querying recent SIP data")
        limit = int(query.get("limit", 1000))
        if not 1 <= limit <= 10_000:
            raise _ApiError(400, "invalid limit: must be between 1 and 10000")
        start = _parse_time(query["start"]) if "start" in query else None
        end = _parse_time(query["end"]) if "end" in query else None
        items = []
        for symbol in sorted(symbols):
            for bar in self.bars.get(symbol, []):
                moment = _parse_time(bar["t"])
                if (start is None or moment >= start) and (end is None or moment <= end):
                    items.append((symbol, bar))
        offset = 0
        if query.get("page_token"):
            offset = int(base64.b64decode(query["page_token"]).decode().rsplit("|", 1)[1])
        page_size = min(limit, self.bar_page_size)
        page = items[offset : offset + page_size]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            grouped.setdefault(symbol, []).append(bar)
        following = offset + page_size
        token = None
        if following < len(items):
            # Opaque to clients, like Alpaca's own base64 tokens.
            token = base64.b64encode(f"{items[following][0]}|{following}".encode()).decode()
        return {"bars": grouped, "next_page_token": token, "currency": "USD"}

    # ------------------------------------------------------------------------ plumbing
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeAlpacaServer) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closed its socket before the late answer: expected here.
        logger.debug("fake Alpaca: connection from %s ended early", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "FakeAlpaca/1.0"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logger.debug("fake Alpaca: " + format, *args)

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        authorized = (
            self.headers.get("APCA-API-KEY-ID") == fake.api_key
            and self.headers.get("APCA-API-SECRET-KEY") == fake.secret_key
        )
        fake._record(RecordedRequest(method, parts.path, query, body, authorized))
        if not authorized:
            self._send(401, {"code": 40110000, "message": "request is not authorized"})
            return
        script = fake._take_script(method, parts.path)
        if script is not None and not script.process:
            fake._sleep(script.delay)
            self._send(script.status or 500, script.payload)
            return
        try:
            status, payload = fake.handle(method, parts.path, query, body)
        except _ApiError as exc:
            status, payload = exc.status, exc.payload
        if script is not None:
            fake._sleep(script.delay)
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload, allow_nan=False).encode()
        try:
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("fake Alpaca: client left before the answer to %s", self.path)
