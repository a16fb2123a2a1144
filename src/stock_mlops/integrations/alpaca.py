"""What both Alpaca adapters share: keys from the environment, a timeout for alpaca-py's HTTP
session, and short, secret-free error descriptions.

Used by the market-data source (:mod:`stock_mlops.sources.alpaca`) and the broker
(:mod:`stock_mlops.brokers.alpaca`); neither depends on the other. Keys never appear in a message.
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests
from alpaca.common.exceptions import APIError

API_KEY_VARIABLE = "ALPACA_API_KEY"
SECRET_KEY_VARIABLE = "ALPACA_SECRET_KEY"
_MAX_ERROR_TEXT = 300


class MissingCredentialsError(LookupError):
    """An Alpaca key variable is unset or empty; the message names the variable(s)."""


def credentials_from_environment() -> tuple[str, str]:
    """Reads the Alpaca key id and secret from the environment.

    Returns:
        ``(api_key, secret_key)``.

    Raises:
        MissingCredentialsError: Naming every variable that is unset or empty.
    """
    api_key = os.environ.get(API_KEY_VARIABLE, "").strip()
    secret_key = os.environ.get(SECRET_KEY_VARIABLE, "").strip()
    missing = [
        name
        for name, value in ((API_KEY_VARIABLE, api_key), (SECRET_KEY_VARIABLE, secret_key))
        if not value
    ]
    if missing:
        raise MissingCredentialsError(
            f"Alpaca credentials missing: set the environment variable(s) {', '.join(missing)}"
        )
    return api_key, secret_key


class TimeoutSession(requests.Session):
    """A requests session that applies a default timeout to every request.

    alpaca-py's REST client sends every call through ``self._session.request(...)`` without a
    timeout, so a stalled connection would block a run forever. Replacing that session is the
    only hook it offers (there is no timeout argument in alpaca-py 0.44).
    """

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds

    def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_seconds)
        return super().request(method, url, **kwargs)


def apply_request_timeout(client: Any, timeout_seconds: float) -> None:
    """Gives an alpaca-py REST client a session whose requests time out.

    Args:
        client: A ``RESTClient`` subclass instance (trading or market data).
        timeout_seconds: Connect and read timeout of each HTTP request.

    Raises:
        TypeError: If the client has no requests session to replace (an alpaca-py change that
            must not silently drop the timeout).
    """
    current = getattr(client, "_session", None)
    if not isinstance(current, requests.Session):
        raise TypeError(
            f"{type(client).__name__} has no requests session to time out: alpaca-py changed; "
            "check stock_mlops.sources.alpaca.apply_request_timeout"
        )
    current.close()
    client._session = TimeoutSession(timeout_seconds)


def describe_failure(exc: BaseException) -> str:
    """A short, secret-free description of an alpaca-py or requests failure.

    Alpaca's error bodies are ``{"code": ..., "message": ...}`` (trading) or ``{"message": ...}``
    (market data); anything else is quoted, shortened.
    """
    if isinstance(exc, APIError):
        text = str(exc)
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        detail = str(message) if message else text[:_MAX_ERROR_TEXT] or "empty response body"
        code = body.get("code") if isinstance(body, dict) else None
        status = exc.status_code
        prefix = f"HTTP {status}: " if status else ""
        return f"{prefix}{detail}" + (f" (Alpaca code {code})" if code else "")
    if isinstance(exc, requests.Timeout):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect ({str(exc)[:_MAX_ERROR_TEXT]})"
    return f"{type(exc).__name__}: {str(exc)[:_MAX_ERROR_TEXT]}"
