"""A loopback stand-in for AlphaVantage's ``/query`` endpoint, for tests.

It serves the real saved responses in ``tests/fixtures/alphavantage`` (byte for byte when the
request matches the saved one, else re-rendered from the same bars in the layout the request asks
for: plain or adjusted daily, JSON or CSV, full or compact), replays scripted failures, and records
every request it received. It listens on 127.0.0.1 on a free port; nothing leaves the machine.

Usage::

    with FakeAlphaVantage(api_key="KEY") as server:
        server.add_fixture("IBM", FIXTURES / "alphavantage" / "IBM_..._compact_2023-03-24.json")
        server.script("IBM", Reply(status=503))   # the next IBM request fails once
        settings = {"base_url": server.base_url}
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Field names in AlphaVantage's JSON layouts, in their numbered order.
ADJUSTED_JSON_FIELDS = [
    ("1. open", "open"),
    ("2. high", "high"),
    ("3. low", "low"),
    ("4. close", "close"),
    ("5. adjusted close", "adjusted_close"),
    ("6. volume", "volume"),
    ("7. dividend amount", "dividend_amount"),
    ("8. split coefficient", "split_coefficient"),
]
# In the plain daily series the number 5 is the volume: keys must be mapped by name.
DAILY_JSON_FIELDS = [
    ("1. open", "open"),
    ("2. high", "high"),
    ("3. low", "low"),
    ("4. close", "close"),
    ("5. volume", "volume"),
]
ADJUSTED_CSV_COLUMNS = [
    "open",
    "high",
    "low",
    "close",
    "adjusted_close",
    "volume",
    "dividend_amount",
    "split_coefficient",
]
DAILY_CSV_COLUMNS = ["open", "high", "low", "close", "volume"]
INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for {function}."
)
MISSING_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``body`` may be bytes, text, or a dict sent as JSON."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    content_type: str = "application/json"
    # Seconds to wait before answering (longer than the client's timeout simulates a hang).
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class Received:
    """A request the server got: its query parameters and the (injectable) clock's time."""

    params: dict[str, str]
    at: float


@dataclass
class _Series:
    # Newest first, as AlphaVantage orders them: (date, {canonical field: text value}).
    bars: list[tuple[str, dict[str, str]]]
    symbol_meta: str
    fixture_bytes: bytes
    fixture_outputsize: str


@dataclass
class FakeAlphaVantage:
    """The server. Start it with ``with`` or :meth:`start`/:meth:`stop`.

    Attributes:
        api_key: When set, requests with another key get AlphaVantage's missing-key error.
        compact_size: Bars in a compact answer (AlphaVantage: 100).
        clock: Time source stamped on each :class:`Received` (tests pass their fake clock).
        until: Per symbol, the last date the "market" has reached (simulates an earlier day).
    """

    api_key: str | None = None
    compact_size: int = 100
    clock: Callable[[], float] = time.monotonic
    until: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _series: dict[str, _Series] = field(default_factory=dict)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------- set-up
    def add_fixture(self, symbol: str, path: Path) -> None:
        """Serves ``symbol`` from a saved ``TIME_SERIES_DAILY_ADJUSTED`` JSON response."""
        raw = path.read_bytes()
        body = json.loads(raw)
        series = body["Time Series (Daily)"]
        bars = [
            (day, {name: values[key] for key, name in ADJUSTED_JSON_FIELDS})
            for day, values in series.items()
        ]
        meta = body["Meta Data"]
        self._series[symbol] = _Series(
            bars=sorted(bars, key=lambda bar: bar[0], reverse=True),
            symbol_meta=meta["2. Symbol"],
            fixture_bytes=raw,
            fixture_outputsize=meta["4. Output Size"].lower(),
        )

    def script(self, symbol: str, *replies: Reply) -> None:
        """Queues answers for the next requests of ``symbol``, before its normal data."""
        with self._lock:
            self._scripts.setdefault(symbol, deque()).extend(replies)

    def params_of(self, symbol: str) -> list[dict[str, str]]:
        """Query parameters of every request received for ``symbol``, in order."""
        return [r.params for r in self.received if r.params.get("symbol") == symbol]

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/query"

    # --------------------------------------------------------------------------- answers
    def answer(self, params: dict[str, str]) -> Reply:
        """What AlphaVantage would answer to ``params`` (scripted replies first)."""
        symbol = params.get("symbol", "")
        with self._lock:
            self.received.append(Received(params=dict(params), at=self.clock()))
            queue = self._scripts.get(symbol)
            if queue:
                return queue.popleft()
        if self.api_key is not None and params.get("apikey") != self.api_key:
            return Reply(body={"Error Message": MISSING_KEY})
        function = params.get("function", "")
        series = self._series.get(symbol)
        if series is None or function not in ("TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED"):
            return Reply(body={"Error Message": INVALID_CALL.format(function=function)})
        outputsize = params.get("outputsize", "compact")
        datatype = params.get("datatype", "json")
        bars = [bar for bar in series.bars if bar[0] <= self.until.get(symbol, "9999-12-31")]
        if outputsize != "full":
            bars = bars[: self.compact_size]
        adjusted = function == "TIME_SERIES_DAILY_ADJUSTED"
        unchanged = (
            adjusted and datatype == "json" and len(bars) == len(series.bars)
        ) and outputsize == series.fixture_outputsize
        if unchanged:
            return Reply(body=series.fixture_bytes)
        if datatype == "csv":
            return Reply(body=_csv(bars, adjusted), content_type="application/x-download")
        return Reply(body=_json(series.symbol_meta, bars, adjusted, outputsize))

    # -------------------------------------------------------------------------- lifecycle
    def start(self) -> FakeAlphaVantage:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/query":
                    reply = Reply(status=404, body="not found", content_type="text/plain")
                else:
                    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    reply = fake.answer(params)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout): that is the scenario being tested.
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                # The request line carries the API key; the default writes it to stderr.
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return

        self._httpd = Server(("127.0.0.1", 0), Handler)
        # A short poll interval keeps `stop()` (which waits for the next poll) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAlphaVantage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json(
    symbol: str, bars: list[tuple[str, dict[str, str]]], adjusted: bool, outputsize: str
) -> dict[str, Any]:
    fields = ADJUSTED_JSON_FIELDS if adjusted else DAILY_JSON_FIELDS
    information = (
        "Daily Time Series with Splits and Dividend Events"
        if adjusted
        else "Daily Prices (open, high, low, close) and Volumes"
    )
    return {
        "Meta Data": {
            "1. Information": information,
            "2. Symbol": symbol,
            "3. Last Refreshed": bars[0][0] if bars else "",
            "4. Output Size": "Full size" if outputsize == "full" else "Compact",
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": {
            day: {key: values[name] for key, name in fields} for day, values in bars
        },
    }


def _csv(bars: list[tuple[str, dict[str, str]]], adjusted: bool) -> str:
    columns = ADJUSTED_CSV_COLUMNS if adjusted else DAILY_CSV_COLUMNS
    lines = [",".join(["timestamp", *columns])]
    lines += [",".join([day, *(values[c] for c in columns)]) for day, values in bars]
    # AlphaVantage's CSV uses CRLF line ends.
    return "\r\n".join(lines) + "\r\n"
