"""AlphaVantage daily prices over HTTP, within the free tier's limits and without leaking the key.

One :class:`AlphaVantageSource` serves one ingestion run. It

- asks ``outputsize=full`` or ``compact`` as the raw-price archive decides, and returns the body
  bytes exactly as received (the archive stores them; parsing happens in the pipeline);
- recognises AlphaVantage's HTTP-200 error bodies (``Error Message``, ``Information``, ``Note``,
  or no ``Time Series`` key; a CSV request answers errors with a JSON body) and raises
  :class:`~stock_mlops.sources.base.SourceError` quoting the service;
- spaces requests by ``60 / calls_per_minute`` seconds and stops before the daily budget is spent
  (``daily_budget`` minus the calls the archive's manifests already record for today);
- retries timeouts, connection errors and HTTP 5xx with exponential backoff, never 4xx or error
  bodies (asking again would give the same answer and spend the budget);
- keeps ``ALPHAVANTAGE_API_KEY`` out of ``origin``, exception messages and log records: the key
  travels in the query string, so requests' exceptions and urllib3's debug log would otherwise
  carry it.

``requests`` is imported where it is used so that importing :func:`alphavantage_error` (for the
parser) costs nothing on runs that never call AlphaVantage.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from stock_mlops.core.params import AlphaVantageParams
from stock_mlops.core.symbols import InvalidSymbolError, validate_symbol
from stock_mlops.sources.base import RawPayload, SourceError

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

API_KEY_ENV = "ALPHAVANTAGE_API_KEY"
_ERROR_KEYS = ("Error Message", "Information", "Note")
_REDACTED = "***"
# Any `apikey=` query parameter, even one this process never registered, is masked in text.
_APIKEY_PARAM = re.compile(r"(apikey=)[^&\s'\"]+", re.IGNORECASE)
# Loggers that see request URLs (urllib3 logs every request line at DEBUG, retries at WARNING).
_URL_LOGGERS = (
    __name__,
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
)
_CSV_REQUIRED_COLUMNS = {"open", "high", "low", "close", "volume"}


def alphavantage_error(body: Any) -> str | None:
    """The service's own message when an HTTP-200 JSON body is an error, else None.

    AlphaVantage reports bad symbols or functions (``Error Message``), rate limits and premium
    endpoints (``Information``, formerly ``Note``) with HTTP 200; any body without a
    ``Time Series ...`` key carries no bars and is an error too.

    Args:
        body: The decoded JSON response.

    Returns:
        ``"<key>: <message>"`` for an error body, None for a body with a time series.
    """
    if not isinstance(body, dict):
        return f"the response is not a JSON object but {type(body).__name__}"
    for key in _ERROR_KEYS:
        if key in body:
            return f"{key}: {body[key]}"
    if not any(str(key).startswith("Time Series") for key in body):
        return f"no 'Time Series' key in the response (keys: {sorted(body)[:5]})"
    return None


class _SecretRedactor(logging.Filter):
    """Masks registered secrets in the records of the loggers that can see request URLs.

    A logger's filters run only for records created on that very logger, hence the explicit list
    of logger names. Once registered, a key stays masked for the life of the process.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, secret: str) -> None:
        with self._lock:
            self._secrets.add(secret)
            for name in _URL_LOGGERS:
                target = logging.getLogger(name)
                if self not in target.filters:
                    target.addFilter(self)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, _REDACTED)
        return _APIKEY_PARAM.sub(rf"\g<1>{_REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed record is the emitter's problem; logging reports it later as usual.
            return True
        scrubbed = self.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info:
            # Formatters print `exc_text` when set, so the traceback is rendered once, masked.
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_REDACTOR = _SecretRedactor()


class AlphaVantageSource:
    """Daily bars from AlphaVantage's ``TIME_SERIES_DAILY[_ADJUSTED]``, one symbol per call.

    Args:
        api_key: The AlphaVantage key (normally from ``ALPHAVANTAGE_API_KEY``).
        params: Endpoint, function, datatype, limits and retry settings.
        calls_used_today: Calls already spent today (UTC) by earlier runs.
        session: A ``requests.Session`` to send through (a new one when None).
        clock: Monotonic seconds, for the rate limit (injectable for tests).
        sleep: Waits the given seconds, for the rate limit and backoff (injectable for tests).

    Raises:
        SourceError: When ``api_key`` is empty.
    """

    name = "alphavantage"

    def __init__(
        self,
        api_key: str,
        params: AlphaVantageParams | None = None,
        *,
        calls_used_today: int = 0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not api_key.strip():
            raise SourceError(_missing_key_message())
        self._api_key = api_key.strip()
        _REDACTOR.register(self._api_key)
        self._params = params or AlphaVantageParams()
        self._endpoint = _without_credentials(self._params.base_url)
        self._calls_used_today = max(int(calls_used_today), 0)
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._sleep = sleep
        self._min_interval = 60.0 / self._params.calls_per_minute
        self._last_request_at: float | None = None
        self.calls_made = 0

    @classmethod
    def from_settings(
        cls,
        params: AlphaVantageParams,
        calls_used_today: int = 0,
        *,
        environ: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AlphaVantageSource:
        """Builds a source from ``data_ingestion.alphavantage`` and the environment's key.

        Args:
            params: The validated ``data_ingestion.alphavantage`` parameters.
            calls_used_today: Calls already spent today (UTC) by earlier runs.
            environ: Where to read ``ALPHAVANTAGE_API_KEY`` (default ``os.environ``).
            session: See the class.
            clock: See the class.
            sleep: See the class.

        Returns:
            A ready source.

        Raises:
            SourceError: When the key is not set.
        """
        api_key = (os.environ if environ is None else environ).get(API_KEY_ENV, "")
        if not api_key.strip():
            raise SourceError(_missing_key_message())
        return cls(
            api_key,
            params,
            calls_used_today=calls_used_today,
            session=session,
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return (
            f"AlphaVantageSource(endpoint={self._endpoint!r}, function={self._params.function!r}, "
            f"datatype={self._params.datatype!r}, calls_made={self.calls_made})"
        )

    # ----------------------------------------------------------------------------- protocol
    def list_symbols(self) -> list[str] | None:
        """AlphaVantage offers no symbol list: the request must name them."""
        return None

    @property
    def calls_remaining(self) -> int:
        """Requests still allowed today under ``daily_budget``."""
        used = self._calls_used_today + self.calls_made
        return max(self._params.daily_budget - used, 0)

    def fetch(self, symbol: str, *, full: bool) -> RawPayload:
        """Fetches one symbol's daily series.

        Args:
            symbol: The ticker, e.g. ``IBM``.
            full: ``outputsize=full`` (the whole history) when True, else ``compact``
                (the latest 100 bars).

        Returns:
            The response body as received, with format ``alphavantage-json`` or
            ``alphavantage-csv``.

        Raises:
            SourceError: Naming the symbol, for an error body, an HTTP error, exhausted retries or
                an exhausted daily budget. The message never contains the API key.
        """
        try:
            validate_symbol(symbol, "data_ingestion.symbols")
        except InvalidSymbolError as exc:
            raise SourceError(str(exc)) from None
        query = {
            "function": self._params.function,
            "symbol": symbol,
            "outputsize": "full" if full else "compact",
            "datatype": self._params.datatype,
        }
        origin = f"{self._endpoint}?" + "&".join(f"{k}={quote_plus(v)}" for k, v in query.items())
        logger.info("fetching %s from AlphaVantage (%s)", symbol, origin)
        # A service that echoes the key in its answer must not get it archived.
        content = self._scrub_bytes(self._get(symbol, query, origin))
        self._check_body(symbol, content)
        return RawPayload(
            symbol=symbol,
            source=self.name,
            format=f"alphavantage-{self._params.datatype}",
            content=content,
            fetched_at=dt.datetime.now(dt.UTC),
            kind="full" if full else "compact",
            origin=origin,
        )

    def close(self) -> None:
        """Closes the HTTP session if this source created it."""
        if self._owns_session and self._session is not None:
            self._session.close()
            self._session = None

    # ------------------------------------------------------------------------------- HTTP
    def _get(self, symbol: str, query: dict[str, str], origin: str) -> bytes:
        """Sends one logical request, with rate limiting, budget and retries; returns the body."""
        import requests  # noqa: PLC0415 - see the module docstring

        attempts = self._params.max_retries + 1
        failure = ""
        for attempt in range(1, attempts + 1):
            if self.calls_remaining <= 0:
                # Raised outside any `except` block so no exception (and no URL) is chained.
                raise self._error(self._budget_message(symbol, failure))
            self._wait_for_slot()
            self.calls_made += 1
            fatal = ""
            try:
                response = self._http().get(
                    self._params.base_url,
                    params={**query, "apikey": self._api_key},
                    timeout=self._params.timeout_seconds,
                )
            except requests.Timeout:
                failure = f"no answer within {self._params.timeout_seconds:g} s (timeout)"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                failure = f"connection failed: {type(exc).__name__}: {exc}"
            except requests.RequestException as exc:
                fatal = f"request could not be sent: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 400:
                    return response.content
                failure = f"HTTP {status} {response.reason or ''}".rstrip()
                if status < 500:
                    fatal = f"{failure} (client errors are not retried)"
            if fatal:
                raise self._error(f"AlphaVantage request for {symbol} ({origin}) failed: {fatal}")
            if attempt < attempts:
                delay = self._params.backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "AlphaVantage request for %s failed (%s); retry %d of %d in %.1f s",
                    symbol,
                    self._scrub(failure),
                    attempt,
                    attempts - 1,
                    delay,
                )
                self._sleep(delay)
        raise self._error(
            f"AlphaVantage request for {symbol} ({origin}) failed after {attempts} "
            f"attempt(s): {failure}"
        )

    def _http(self) -> requests.Session:
        if self._session is None:
            import requests  # noqa: PLC0415 - see the module docstring

            self._session = requests.Session()
        return self._session

    def _wait_for_slot(self) -> None:
        """Sleeps until ``60 / calls_per_minute`` seconds have passed since the last request."""
        if self._last_request_at is not None:
            wait = self._last_request_at + self._min_interval - self._clock()
            if wait > 0:
                logger.debug("rate limit: waiting %.2f s before the next AlphaVantage call", wait)
                self._sleep(wait)
        self._last_request_at = self._clock()

    def _budget_message(self, symbol: str, failure: str) -> str:
        message = (
            f"AlphaVantage daily budget used up before fetching {symbol}: "
            f"{self._calls_used_today + self.calls_made} of {self._params.daily_budget} calls "
            f"spent today (UTC); raise data_ingestion.alphavantage.daily_budget only if your plan "
            f"allows more"
        )
        return f"{message} (last attempt: {failure})" if failure else message

    # ------------------------------------------------------------------------------ bodies
    def _check_body(self, symbol: str, content: bytes) -> None:
        """Raises SourceError when a 200 response is not a price series."""
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise self._error(f"AlphaVantage answered {symbol} with non-UTF-8 bytes") from None
        stripped = text.lstrip()
        if not stripped:
            raise self._error(f"AlphaVantage answered {symbol} with an empty body")
        if self._params.datatype == "csv" and not stripped.startswith("{"):
            self._check_csv(symbol, stripped)
            return
        try:
            body = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise self._error(
                f"AlphaVantage answered {symbol} with a body that is not JSON "
                f"({exc.msg} at line {exc.lineno}): {stripped[:120]!r}"
            ) from None
        message = alphavantage_error(body)
        answered = (body.get("Meta Data") or {}).get("2. Symbol") if message is None else None
        if isinstance(answered, str) and answered.strip().upper() != symbol.upper():
            message = f"the response is for symbol {answered!r}, not {symbol!r}"
        if message is None and self._params.datatype == "csv":
            # A CSV request only ever gets JSON back as an error.
            message = f"a JSON body instead of CSV (keys: {sorted(body)[:5]})"
        if message is not None:
            raise self._error(f"AlphaVantage returned an error for {symbol}: {message}")

    def _check_csv(self, symbol: str, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        header = {column.strip().lower() for column in lines[0].split(",")}
        if not _CSV_REQUIRED_COLUMNS <= header or not header & {"timestamp", "date"}:
            raise self._error(
                f"AlphaVantage answered {symbol} with a body that is not a price CSV "
                f"(first line: {lines[0][:120]!r})"
            )
        if len(lines) < 2:
            raise self._error(f"AlphaVantage answered {symbol} with a CSV header but no bars")

    # ------------------------------------------------------------------------------ secrets
    def _scrub(self, text: str) -> str:
        return _REDACTOR.scrub(text)

    def _scrub_bytes(self, content: bytes) -> bytes:
        for form in {self._api_key, quote_plus(self._api_key), quote(self._api_key, safe="")}:
            content = content.replace(form.encode(), _REDACTED.encode())
        return content

    def _error(self, message: str) -> SourceError:
        # Service messages may echo the key ("We have detected your API key as ..."), and
        # requests' exceptions embed the URL: every message passes through the scrubber.
        return SourceError(self._scrub(message))


def _missing_key_message() -> str:
    return (
        f"AlphaVantage needs an API key: set the environment variable {API_KEY_ENV} "
        "(a free key is available at https://www.alphavantage.co/support/#api-key)"
    )


def _without_credentials(url: str) -> str:
    """The endpoint without user info or query, fit for ``origin`` and log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
