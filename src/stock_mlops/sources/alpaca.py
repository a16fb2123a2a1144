"""Daily bars from Alpaca's market-data API (alpaca-py's ``StockHistoricalDataClient``).

Bars are requested with ``adjustment=all`` (split- and dividend-adjusted OHLC, split-adjusted
volume) and the configured feed; the free plan only gets the thin ``iex`` feed for recent bars.
The payload is the API's own JSON shape, ``{"bars": {SYMBOL: [{"t", "o", "h", "l", "c", "v",
"n", "vw"}, ...]}, "next_page_token": null}``, with every page merged, which is what
``alpaca-json`` parsing expects.

Keys come from the environment through :mod:`stock_mlops.integrations.alpaca` (shared with the
broker); they never appear in a message or an origin.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from stock_mlops.core.calendar import NEW_YORK
from stock_mlops.core.params import AlpacaDataParams
from stock_mlops.core.symbols import InvalidSymbolError, validate_symbol
from stock_mlops.integrations.alpaca import (
    MissingCredentialsError,
    apply_request_timeout,
    credentials_from_environment,
    describe_failure,
)
from stock_mlops.sources.base import RawPayload, SourceError

logger = logging.getLogger(__name__)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlpacaSource:
    """Split- and dividend-adjusted daily bars of one symbol at a time from Alpaca.

    Args:
        client: A ``StockHistoricalDataClient`` created with ``raw_data=True``.
        feed: Alpaca data feed (``iex`` on the free plan, ``sip`` with a subscription).
        start_date: First date of a full fetch.
        now: The current time (injectable for tests).
    """

    name = "alpaca"
    # A compact fetch asks for this many calendar days (about 70 sessions).
    COMPACT_WINDOW_DAYS = 100
    # SIP data younger than this needs a paid subscription; older data is free.
    SIP_DELAY = dt.timedelta(minutes=16)
    # Today's daily bar is complete only after the close (16:00 New York) plus late prints.
    SESSION_FINAL_AFTER = dt.time(16, 15)

    def __init__(
        self,
        client: StockHistoricalDataClient,
        *,
        feed: str = "iex",
        start_date: dt.date = dt.date(2016, 1, 1),
        now: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._feed = DataFeed(feed)
        self._start_date = start_date
        self._now = now

    @classmethod
    def from_settings(
        cls, params: AlpacaDataParams, *, now: Callable[[], dt.datetime] = _utc_now
    ) -> AlpacaSource:
        """Builds the source from ``data_ingestion.alpaca`` and the environment's keys.

        Args:
            params: The validated ``data_ingestion.alpaca`` parameters.
            now: The current time (injectable for tests).

        Raises:
            SourceError: When a key variable is missing.
        """
        try:
            api_key, secret_key = credentials_from_environment()
        except MissingCredentialsError as exc:
            raise SourceError(str(exc)) from None
        client = StockHistoricalDataClient(
            api_key, secret_key, raw_data=True, url_override=params.url_override
        )
        apply_request_timeout(client, params.timeout_seconds)
        return cls(client, feed=params.feed, start_date=params.start_date, now=now)

    def list_symbols(self) -> list[str] | None:
        """An API offers no symbol list of its own: symbols come from parameters."""
        return None

    def fetch(self, symbol: str, *, full: bool) -> RawPayload:
        """Fetches daily bars: since ``start_date`` when ``full``, else the last 100 days.

        Raises:
            SourceError: Naming the symbol and Alpaca's message (or that no bars came back).
        """
        try:
            validate_symbol(symbol, "data_ingestion.symbols")
        except InvalidSymbolError as exc:
            raise SourceError(str(exc)) from None
        now = self._now()
        start = (
            self._start_date
            if full
            else now.astimezone(NEW_YORK).date() - dt.timedelta(days=self.COMPACT_WINDOW_DAYS)
        )
        end = self._end(now)
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame.Day,
            start=dt.datetime.combine(start, dt.time(), tzinfo=NEW_YORK),
            end=end,
            adjustment=Adjustment.ALL,
            feed=self._feed,
        )
        where = f"daily bars of {symbol} from Alpaca (feed {self._feed.value})"
        try:
            bars = self._client.get_stock_bars(request)
        except (APIError, requests.RequestException) as exc:
            raise SourceError(f"{where} failed: {describe_failure(exc)}") from None
        except (ValueError, AttributeError, TypeError) as exc:
            # alpaca-py raises these when a response has none of the keys it knows.
            raise SourceError(f"{where}: unexpected response ({exc})") from None
        series = bars.get(symbol) if isinstance(bars, dict) else None
        if not series:
            raise SourceError(
                f"{where}: no bars since {start} (unknown symbol, or no data on this feed)"
            )
        logger.info("alpaca: %d daily bars of %s since %s", len(series), symbol, start)
        content = json.dumps({"bars": {symbol: series}, "next_page_token": None}).encode()
        return RawPayload(
            symbol=symbol,
            source=self.name,
            format="alpaca-json",
            content=content,
            fetched_at=now,
            kind="full" if full else "compact",
            origin=(
                f"alpaca v2/stocks/bars symbols={symbol} timeframe=1Day adjustment=all "
                f"feed={self._feed.value} start={start.isoformat()}"
            ),
        )

    def _end(self, now: dt.datetime) -> dt.datetime:
        """The newest instant to ask for: never a session still trading, never paid SIP data."""
        local = now.astimezone(NEW_YORK)
        end = now
        if local.time() < self.SESSION_FINAL_AFTER:
            # Daily bars are stamped at midnight New York: ending just before today's midnight
            # leaves out today's bar, which would otherwise be a partial day taken for a close.
            midnight = dt.datetime.combine(local.date(), dt.time(), tzinfo=NEW_YORK)
            end = midnight - dt.timedelta(seconds=1)
        if self._feed == DataFeed.SIP:
            end = min(end, now - self.SIP_DELAY)
        return end
