"""The price-source interface and the request that the ingestion pipeline hands to it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from stock_mlops.core.params import AlpacaDataParams, AlphaVantageParams

FetchKind = Literal["full", "compact", "file"]


class SourceError(RuntimeError):
    """A source could not deliver a symbol; the message names the symbol and the reason."""


@dataclass(frozen=True)
class RawPayload:
    """One response or file exactly as received, plus where and when it came from."""

    symbol: str
    source: str
    # How to parse `content`: csv | alphavantage-json | alphavantage-csv | alpaca-json
    format: str
    content: bytes
    fetched_at: dt.datetime
    kind: FetchKind
    # File name or endpoint description, never containing a credential.
    origin: str

    @property
    def extension(self) -> str:
        return "json" if self.format.endswith("json") else "csv"


@dataclass(frozen=True)
class FetchFailure:
    """A symbol that could not be fetched in this run."""

    symbol: str
    source: str
    reason: str


@dataclass(frozen=True)
class PriceRequest:
    """What the ingestion pipeline asks for; built by a pure node from validated parameters.

    Only the settings of the chosen source are set. The archive stores the request in its
    manifest (:meth:`to_dict`) and reads it back (:meth:`from_dict`).
    """

    source: str
    symbols: tuple[str, ...]
    # Prices as known at this session's close (a past run date is replayed from the archive).
    as_of: dt.date | None = None
    # The bundled snapshot (source "bundled" only; None there means the default, mag7).
    universe: str | None = None
    csv_dir: str | None = None
    csv_symbol_regex: str | None = None
    alphavantage: AlphaVantageParams | None = None
    alpaca: AlpacaDataParams | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request as stored in a fetch manifest (no credentials: keys come from the
        environment)."""
        settings: dict[str, Any] = {}
        if self.universe is not None:
            settings["universe"] = self.universe
        if self.csv_dir is not None:
            settings["csv_dir"] = self.csv_dir
            settings["csv_symbol_regex"] = self.csv_symbol_regex
        if self.alphavantage is not None:
            settings["alphavantage"] = self.alphavantage.model_dump(mode="json")
        if self.alpaca is not None:
            settings["alpaca"] = self.alpaca.model_dump(mode="json")
        return {
            "source": self.source,
            "symbols": list(self.symbols),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "settings": settings,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PriceRequest:
        """Reads a request stored by :meth:`to_dict`."""
        settings = dict(raw.get("settings") or {})
        alphavantage = settings.get("alphavantage")
        alpaca = settings.get("alpaca")
        as_of = raw.get("as_of")
        return cls(
            source=raw["source"],
            symbols=tuple(raw.get("symbols") or ()),
            as_of=None if as_of is None else dt.date.fromisoformat(as_of),
            universe=settings.get("universe"),
            csv_dir=settings.get("csv_dir"),
            csv_symbol_regex=settings.get("csv_symbol_regex"),
            alphavantage=None if alphavantage is None else AlphaVantageParams(**alphavantage),
            alpaca=None if alpaca is None else AlpacaDataParams(**alpaca),
        )


@dataclass(frozen=True)
class ArchivedPrices:
    """What the raw archive holds for the last request: per symbol, the newest complete object
    and the compact windows fetched after it (oldest first), and the symbols that failed."""

    request: PriceRequest
    fetched_at: str
    payloads: dict[str, list[RawPayload]]
    failures: list[FetchFailure]
    # Per symbol, how the archive answered a past as_of (for the quality report).
    notes: dict[str, str] = field(default_factory=dict)


class PriceSource(Protocol):
    """Delivers raw daily bars for one symbol at a time."""

    name: str

    def list_symbols(self) -> list[str] | None:
        """Symbols the source can offer without being asked (folders), or None (APIs)."""

    def fetch(self, symbol: str, *, full: bool) -> RawPayload:
        """Fetches one symbol: its whole history when ``full``, else a recent window.

        Raises:
            SourceError: With a message naming the symbol and the reason.
        """


def make_source(request: PriceRequest, calls_used_today: int = 0) -> PriceSource:
    """Builds the source named by the request (credentials come from the environment).

    Args:
        request: The source, symbols and settings.
        calls_used_today: API calls already spent today (UTC), for sources with a daily budget.
    """
    # Imports are local so that a run on the bundled data never loads requests or alpaca-py.
    if request.source == "bundled":
        from stock_mlops.sources.files import BundledSource  # noqa: PLC0415

        return BundledSource(request.universe) if request.universe else BundledSource()
    if request.source == "csv":
        from stock_mlops.sources.files import CsvFolderSource  # noqa: PLC0415

        if request.csv_dir is None:
            raise SourceError("source 'csv' needs data_ingestion.csv_dir")
        return CsvFolderSource(request.csv_dir, request.csv_symbol_regex)
    if request.source == "alphavantage":
        from stock_mlops.sources.alphavantage import AlphaVantageSource  # noqa: PLC0415

        return AlphaVantageSource.from_settings(
            request.alphavantage or AlphaVantageParams(), calls_used_today=calls_used_today
        )
    if request.source == "alpaca":
        from stock_mlops.sources.alpaca import AlpacaSource  # noqa: PLC0415

        return AlpacaSource.from_settings(request.alpaca or AlpacaDataParams())
    raise SourceError(f"unknown price source '{request.source}'")
