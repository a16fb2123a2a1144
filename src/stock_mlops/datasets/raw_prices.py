"""The raw price archive: every response or file kept as received, immutable, one object per fetch.

Saving a :class:`~stock_mlops.sources.PriceRequest` performs the fetch (this dataset is the only
place where ingestion touches a network or a source folder); loading returns, per requested
symbol, the newest complete object (a full fetch or a file) and the compact windows fetched after
it, oldest first, so the primary layer can always be rebuilt from the raw one.

Layout under ``filepath``::

    <source>/<SYMBOL>/<YYYYmmddTHHMMSSffffffZ>_<full|compact|file>.<json|csv>   immutable objects
    _manifests/<YYYYmmddTHHMMSSffffffZ>.json                                    one per fetch run

Folder names come only from validated symbols (:mod:`stock_mlops.core.symbols`), never from a
raw string. Before an object is archived, the values of the API keys in the environment
(``ALPHAVANTAGE_API_KEY``, ``ALPACA_API_KEY``, ``ALPACA_SECRET_KEY``) and any ``apikey=`` query
value are replaced by ``***``: a service that echoes the key in its answer would otherwise have
it stored. A fetch in which every symbol fails is recorded, not raised: symbols with archived
history go on from it, and the ingestion node stops (with a quality report of this run) only
when no symbol has usable bars.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.core.params import AlphaVantageParams
from stock_mlops.core.symbols import InvalidSymbolError, is_valid_symbol, validate_symbol
from stock_mlops.core.vocabulary import parse_utc_stamp, utc_stamp
from stock_mlops.datasets._storage import atomic_write_bytes, filesystem, write_once_bytes
from stock_mlops.sources.base import (
    ArchivedPrices,
    FetchFailure,
    PriceRequest,
    RawPayload,
    SourceError,
    make_source,
)

logger = logging.getLogger(__name__)

# Environment variables holding keys a source might echo back in a response.
SECRET_VARIABLES = ("ALPHAVANTAGE_API_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY")
_REDACTED = b"***"
_APIKEY_PARAM = re.compile(rb"(apikey=)[^&\s'\"<)]+", re.IGNORECASE)
# Shorter values are not keys (and replacing them would damage ordinary text).
_MIN_SECRET_LENGTH = 8


def scrub_secrets(content: bytes, environ: dict[str, str] | None = None) -> bytes:
    """``content`` with every known key (raw and URL-encoded) and ``apikey=`` value masked."""
    env = os.environ if environ is None else environ
    for variable in SECRET_VARIABLES:
        secret = (env.get(variable) or "").strip()
        if len(secret) < _MIN_SECRET_LENGTH:
            continue
        for form in {secret, quote_plus(secret), quote(secret, safe="")}:
            content = content.replace(form.encode(), _REDACTED)
    return _APIKEY_PARAM.sub(rb"\g<1>***", content)


_FORMATS = {
    ("alphavantage", "json"): "alphavantage-json",
    ("alphavantage", "csv"): "alphavantage-csv",
    ("alpaca", "json"): "alpaca-json",
}


def _invalid(symbol: object, where: str) -> str:
    try:
        validate_symbol(symbol, where)
    except InvalidSymbolError as exc:
        return str(exc)
    return ""


class RawPriceArchiveDataset(AbstractDataset[PriceRequest, ArchivedPrices]):
    """Fetches on save, archives immutably, and loads the archive of the last request.

    Example catalog entry::

        raw_prices:
          type: stock_mlops.datasets.RawPriceArchiveDataset
          filepath: ${_root}/01_raw/prices
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._fs, self._protocol, self._root = filesystem(filepath, credentials, fs_args)
        self._filepath = filepath
        self.metadata = metadata

    # ------------------------------------------------------------------------------ save
    def save(self, data: PriceRequest) -> None:
        request = data
        started = dt.datetime.now(dt.UTC)
        replaying = request.as_of is not None and request.as_of < started.date()
        source = None

        def connect() -> Any:
            nonlocal source
            if source is None:
                calls_today = self._calls_used_on(request.source, started.date())
                try:
                    source = make_source(request, calls_used_today=calls_today)
                except SourceError as exc:
                    raise DatasetError(str(exc)) from None
            return source

        symbols = list(request.symbols) or (connect().list_symbols() or [])
        if not symbols:
            raise DatasetError(f"source '{request.source}' offers no symbols to fetch")

        outcomes: list[dict[str, Any]] = []
        failures: list[FetchFailure] = []
        if not replaying or not request.symbols:
            for name, reason in getattr(connect(), "rejected_files", lambda: [])():
                failures.append(FetchFailure(name, request.source, reason))
        for symbol in symbols:
            if not is_valid_symbol(symbol):
                reason = _invalid(symbol, f"the {request.source} source")
                failures.append(FetchFailure(str(symbol), request.source, reason))
                continue
            # One listing per symbol (it reads a digest file per object) serves both decisions.
            stored = self._objects(request.source, symbol)
            complete = [o for o in stored if o["kind"] != "compact"]
            if replaying and complete:
                # A past run date is rebuilt from what is archived: no API call, no new object.
                outcomes.append({**self._replayed(symbol, stored[-1]), "status": "replayed"})
                continue
            full = self._needs_full_fetch(request, stored, started)
            try:
                payload = connect().fetch(symbol, full=full)
            except SourceError as exc:
                failures.append(FetchFailure(symbol, request.source, str(exc)))
                logger.warning("fetch of %s from %s failed: %s", symbol, request.source, exc)
                continue
            if payload.symbol != symbol:
                failures.append(
                    FetchFailure(
                        symbol,
                        request.source,
                        f"the source answered for {payload.symbol!r} instead of {symbol!r}",
                    )
                )
                continue
            outcomes.append(self._archive(payload, stored))

        manifest = {
            "fetched_at": utc_stamp(started),
            "completed_at": utc_stamp(dt.datetime.now(dt.UTC)),
            "request": request.to_dict(),
            "objects": outcomes,
            "failures": [f.__dict__ for f in failures],
            "api_calls": getattr(source, "calls_made", 0) if source is not None else 0,
        }
        manifest_path = f"{self._root}/_manifests/{utc_stamp(started)}.json"
        atomic_write_bytes(self._fs, manifest_path, json.dumps(manifest, indent=2).encode())

        fetched = {o["symbol"] for o in outcomes}
        if not fetched.intersection(symbols):
            reasons = "; ".join(f"{f.symbol}: {f.reason}" for f in failures if f.symbol in symbols)
            # Recorded, not raised: the ingestion node decides (archived history may still serve)
            # and writes the quality report of this run either way.
            logger.error(
                "every requested symbol failed to fetch from '%s': %s", request.source, reasons
            )

    @staticmethod
    def _replayed(symbol: str, newest: dict[str, Any]) -> dict[str, Any]:
        return {
            "symbol": symbol,
            "origin": PurePosixPath(newest["path"]).name,
            "sha256": newest["sha256"],
            "path": newest["path"],
            "kind": newest["kind"],
        }

    def _archive(self, payload: RawPayload, stored: list[dict[str, Any]]) -> dict[str, Any]:
        content = scrub_secrets(payload.content)
        digest = hashlib.sha256(content).hexdigest()
        folder = self._folder(payload.source, payload.symbol)
        outcome = {"symbol": payload.symbol, "origin": payload.origin, "sha256": digest}
        if stored and stored[-1]["sha256"] == digest:
            # Same bytes as the newest stored object: that object already represents this state.
            return {
                **outcome,
                "path": stored[-1]["path"],
                "kind": stored[-1]["kind"],
                "status": "unchanged",
            }
        path = f"{folder}/{utc_stamp(payload.fetched_at)}_{payload.kind}.{payload.extension}"
        write_once_bytes(self._fs, path, content)
        atomic_write_bytes(self._fs, f"{path}.sha256", digest.encode())
        return {**outcome, "path": path, "kind": payload.kind, "status": "new"}

    def _needs_full_fetch(
        self, request: PriceRequest, stored: list[dict[str, Any]], now: dt.datetime
    ) -> bool:
        """Full history on the first fetch, or when the compact window no longer overlaps."""
        if request.source == "alpaca":
            # Alpaca's bars come adjusted (adjustment=all) without an adjusted-close column, so a
            # window fetched after a new split or dividend cannot be stitched onto older bars.
            return True
        if not any(o["kind"] != "compact" for o in stored):
            return True
        window = (request.alphavantage or AlphaVantageParams()).compact_window_days
        newest = stored[-1]
        # 100 bars span more than 100 calendar days, so comparing calendar days is conservative.
        return (now - newest["fetched_at"]).days >= window

    def _calls_used_on(self, source: str, day: dt.date) -> int:
        total = 0
        for path in self._manifest_paths():
            stamp = parse_utc_stamp(PurePosixPath(path).stem)
            if stamp.date() != day:
                continue
            manifest = json.loads(self._fs.cat_file(path))
            if manifest["request"]["source"] == source:
                total += int(manifest.get("api_calls", 0))
        return total

    # ------------------------------------------------------------------------------ load
    def load(self) -> ArchivedPrices:
        manifests = self._manifest_paths()
        if not manifests:
            raise DatasetError(
                f"no fetch has been archived under '{self._filepath}' yet; "
                "run the data_ingestion pipeline first"
            )
        manifest = json.loads(self._fs.cat_file(manifests[-1]))
        request = PriceRequest.from_dict(manifest["request"])
        as_of = parse_utc_stamp(manifest["completed_at"])
        symbols = list(request.symbols) or sorted(
            {o["symbol"] for o in manifest["objects"]} | {f["symbol"] for f in manifest["failures"]}
        )
        # Where this fetch's objects came from (file name or endpoint), for error messages.
        origins = {
            (o["symbol"], PurePosixPath(o["path"]).name): o["origin"] for o in manifest["objects"]
        }
        known_by = _known_by(request.as_of)
        payloads: dict[str, list[RawPayload]] = {}
        notes: dict[str, str] = {}
        for symbol in symbols:
            if not is_valid_symbol(symbol):
                continue  # a rejected file name or symbol: reported as a failure, never a path
            objects = [o for o in self._objects(request.source, symbol) if o["fetched_at"] <= as_of]
            if known_by is not None:
                then = [o for o in objects if o["fetched_at"] <= known_by]
                if any(o["kind"] != "compact" for o in then):
                    objects = then  # exactly what was known at that close
                elif objects:
                    notes[symbol] = (
                        f"nothing archived before {request.as_of}'s next session: rebuilt from "
                        f"the archive as fetched on {objects[-1]['fetched_at'].date()}, bars "
                        f"after {request.as_of} dropped"
                    )
            # The newest complete object (full fetch or file) holds the whole state up to its
            # date: older objects stay archived but are not needed to rebuild the history.
            complete = [i for i, o in enumerate(objects) if o["kind"] != "compact"]
            objects = objects[complete[-1] :] if complete else objects
            if objects:
                payloads[symbol] = [self._read(request.source, symbol, o, origins) for o in objects]
        return ArchivedPrices(
            request=request,
            fetched_at=manifest["fetched_at"],
            payloads=payloads,
            failures=[FetchFailure(**f) for f in manifest["failures"]],
            notes=notes,
        )

    def _read(
        self,
        source: str,
        symbol: str,
        obj: dict[str, Any],
        origins: dict[tuple[str, str], str],
    ) -> RawPayload:
        name = PurePosixPath(obj["path"]).name
        extension = PurePosixPath(name).suffix.lstrip(".")
        return RawPayload(
            symbol=symbol,
            source=source,
            format=_FORMATS.get((source, extension), "csv"),
            content=self._fs.cat_file(obj["path"]),
            fetched_at=obj["fetched_at"],
            kind=obj["kind"],
            origin=origins.get((symbol, name), name),
        )

    # --------------------------------------------------------------------------- listing
    def _folder(self, source: str, symbol: str) -> str:
        """The archive folder of one symbol; refuses anything but a plain source and symbol."""
        if source not in ("bundled", "csv", "alphavantage", "alpaca"):
            raise DatasetError(f"unknown price source {source!r}")
        try:
            return f"{self._root}/{source}/{validate_symbol(symbol, f'the {source} source')}"
        except InvalidSymbolError as exc:
            raise DatasetError(str(exc)) from None

    def _objects(self, source: str, symbol: str) -> list[dict[str, Any]]:
        folder = self._folder(source, symbol)
        if not self._fs.isdir(folder):
            return []
        found = []
        for path in self._fs.ls(folder, detail=False):
            name = PurePosixPath(path).name
            if name.startswith(".") or name.endswith(".sha256"):
                continue
            stamp, _, rest = PurePosixPath(name).stem.partition("_")
            found.append(
                {
                    "path": path,
                    "fetched_at": parse_utc_stamp(stamp),
                    "kind": rest,
                    "sha256": self._digest(path),
                }
            )
        return sorted(found, key=lambda o: o["fetched_at"])

    def _digest(self, path: str) -> str:
        """The object's SHA-256; a run killed between the object and its digest file left no
        digest, which is computed (and stored) now so the same bytes are never archived twice."""
        digest_path = f"{path}.sha256"
        if self._fs.exists(digest_path):
            return self._fs.cat_file(digest_path).decode()
        digest = hashlib.sha256(self._fs.cat_file(path)).hexdigest()
        atomic_write_bytes(self._fs, digest_path, digest.encode())
        return digest

    def _manifest_paths(self) -> list[str]:
        folder = f"{self._root}/_manifests"
        if not self._fs.isdir(folder):
            return []
        return sorted(p for p in self._fs.ls(folder, detail=False) if p.endswith(".json"))

    def _exists(self) -> bool:
        return bool(self._manifest_paths())

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}


def _known_by(as_of: dt.date | None) -> dt.datetime | None:
    """The instant by which a session's bar counts as known: the next session's open (a fetch
    in the evening after the close carries that day's bar)."""
    if as_of is None:
        return None
    from stock_mlops.core import calendar  # noqa: PLC0415 - exchange_calendars, on demand

    following = calendar.next_session(pd.Timestamp(as_of))
    opening = dt.datetime.combine(following.date(), dt.time(9, 30), tzinfo=calendar.NEW_YORK)
    return opening.astimezone(dt.UTC)
