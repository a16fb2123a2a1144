"""Parsing of raw payloads into one bar table per symbol. Pure functions, no I/O.

Every parser returns a frame with ``date, open, high, low, close, volume`` and, when the source
provides them, ``adjusted_close, dividend_amount, split_coefficient``. Values that do not parse
become NaN/NaT and are counted by validation; columns that are absent raise :class:`ParseError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from stock_mlops.sources.alphavantage import alphavantage_error
from stock_mlops.sources.base import RawPayload

REQUIRED = ["date", "open", "high", "low", "close", "volume"]
OPTIONAL = ["adjusted_close", "dividend_amount", "split_coefficient"]

# Header spellings seen in the supported CSV layouts, after lower-casing and `_` for spaces.
_CSV_ALIASES = {
    "timestamp": "date",
    "datetime": "date",
    "adj_close": "adjusted_close",
    "adjclose": "adjusted_close",
    "dividend": "dividend_amount",
    "dividends": "dividend_amount",
    "split": "split_coefficient",
    "split_factor": "split_coefficient",
}
# AlphaVantage JSON keys are numbered ("5. volume" or "6. volume"): map by the name, not the number.
_AV_FIELD = re.compile(r"^\s*\d+[a-z]?\.\s*(?P<name>.+?)\s*$")
# Only daily bars are prices here: an intraday, weekly or monthly series is a wrong request.
_DAILY_SERIES = "Time Series (Daily)"


class ParseError(ValueError):
    """A payload that cannot be read as daily bars; the message names the object and why."""


def parse_payload(payload: RawPayload) -> pd.DataFrame:
    """Parses one raw payload according to its format.

    Args:
        payload: Bytes as received, with their format.

    Returns:
        Bars sorted by date (oldest first), typed, with the columns listed in the module doc.

    Raises:
        ParseError: Naming the symbol and object when the content is not daily bars.
    """
    where = f"{payload.symbol} ({payload.origin})"
    if payload.format in ("csv", "alphavantage-csv"):
        frame = _parse_csv(payload.content, where)
    elif payload.format == "alphavantage-json":
        frame = _parse_alphavantage_json(payload.content, where)
    elif payload.format == "alpaca-json":
        frame = _parse_alpaca_json(payload.content, payload.symbol, where)
    else:
        raise ParseError(f"{where}: unknown payload format '{payload.format}'")
    return _typed(frame, where)


def _parse_csv(content: bytes, where: str) -> pd.DataFrame:
    text = _decode(content, where)
    if not text.strip():
        raise ParseError(f"{where}: the file is empty")
    # AlphaVantage answers a CSV request with a JSON error body.
    if text.lstrip().startswith("{"):
        _raise_alphavantage_error(_load_json(text, where), where)
    header = next(csv.reader(io.StringIO(text.lstrip("\r\n").split("\n", 1)[0])), [])
    frame = _read_csv_arrow(content, header)
    if frame is None:  # something Arrow's strict reader refuses: pandas' lenient one decides
        frame = _read_csv_pandas(text, header, where)
    frame.columns = [_canonical_header(c) for c in frame.columns]
    if "close" not in frame.columns and "adjusted_close" in frame.columns:
        raise ParseError(f"{where}: has 'adjusted_close' but no raw 'close' column")
    return frame


def _read_csv_arrow(content: bytes, header: list[str]) -> pd.DataFrame | None:
    """Well-formed files through Arrow's CSV reader, or None for any other file.

    Arrow parses numbers correctly rounded (equal to Python's ``float``) at about twice the speed
    of pandas' round-trip parser, and ISO dates natively. The date column is read as text and
    converted only when every value is an ISO date, so that 20230102 is never an integer.
    """
    dates = [name for name in header if _canonical_header(name) == "date"]
    if len(set(header)) != len(header):
        return None  # repeated column names: pandas numbers the repeats
    try:
        table = pa_csv.read_csv(
            io.BytesIO(content.removeprefix(codecs.BOM_UTF8)),
            read_options=pa_csv.ReadOptions(use_threads=False),
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(dates, pa.string())),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if any(
        not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type))
        for field in table.schema
        if field.name not in dates
    ):
        return None  # text in a number column: pandas' parser reads the rest round-trip exact
    for name in dates:
        text = table.column(name)
        parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
        if parsed.null_count == text.null_count:
            position = table.schema.get_field_index(name)
            table = table.set_column(position, name, parsed.cast(pa.timestamp("ns")))
    # Column by column: numbers as float64 (NaN where empty), as the typed frame holds them.
    columns = {
        name: (column if name in dates else column.cast(pa.float64())).to_numpy()
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return pd.DataFrame(columns, copy=False)


def _read_csv_pandas(text: str, header: list[str], where: str) -> pd.DataFrame:
    try:
        # Numbers are parsed natively (round-trip exact); the date column stays text so that a
        # date such as 20230102 is never read as an integer.
        return pd.read_csv(
            io.StringIO(text),
            skipinitialspace=True,
            float_precision="round_trip",
            dtype={name: str for name in header if _canonical_header(name) == "date"},
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ParseError(f"{where}: not a readable CSV file ({exc})") from None


def _canonical_header(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    return _CSV_ALIASES.get(key, key)


def _parse_alphavantage_json(content: bytes, where: str) -> pd.DataFrame:
    body = _load_json(_decode(content, where), where)
    series_key = next((k for k in body if "Time Series" in k), None)
    if series_key is None:
        _raise_alphavantage_error(body, where)
    if series_key != _DAILY_SERIES:
        raise ParseError(
            f"{where}: '{series_key}' is not a daily series; request TIME_SERIES_DAILY or "
            "TIME_SERIES_DAILY_ADJUSTED"
        )
    rows = []
    for day, values in body[series_key].items():
        row = {"date": day}
        for key, value in values.items():
            match = _AV_FIELD.match(key)
            name = (match.group("name") if match else key).strip().lower().replace(" ", "_")
            row[name] = value
        rows.append(row)
    if not rows:
        raise ParseError(f"{where}: the '{series_key}' object is empty")
    return pd.DataFrame(rows)


def _raise_alphavantage_error(body: dict, where: str) -> None:
    message = alphavantage_error(body)
    if message is None:  # a valid series, but not what this payload should hold
        raise ParseError(f"{where}: a JSON time series where a CSV file was expected")
    raise ParseError(f"{where}: AlphaVantage returned an error: {message}")


def _parse_alpaca_json(content: bytes, symbol: str, where: str) -> pd.DataFrame:
    body = _load_json(_decode(content, where), where)
    bars = body.get(symbol) if isinstance(body, dict) else None
    if bars is None and isinstance(body, dict):
        bars = (body.get("bars") or {}).get(symbol)
    if not bars:
        raise ParseError(f"{where}: no bars for {symbol} in the Alpaca response")
    frame = pd.DataFrame(bars).rename(
        columns={"t": "date", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
    )
    # Alpaca stamps daily bars at the session's start in UTC (04:00 or 05:00Z): the date is NY's.
    stamps = pd.to_datetime(frame["date"], utc=True, errors="coerce")
    frame["date"] = stamps.dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%d")
    return frame


def _typed(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ParseError(f"{where}: missing required column(s) {', '.join(missing)}")
    columns = REQUIRED + [c for c in OPTIONAL if c in frame.columns]
    typed = {"date": _dates(frame["date"]).to_numpy()}
    for name in columns[1:]:
        column = frame[name]
        # Text left in a numeric column (a typo, "null") becomes NaN and is reported by validation.
        typed[name] = (
            column.to_numpy(dtype=float)
            if pd.api.types.is_numeric_dtype(column)
            else _numbers(column.to_numpy())
        )
    out = pd.DataFrame(typed, copy=False)
    dates = typed["date"]
    if len(dates) > 1 and (dates[1:] > dates[:-1]).all():
        return out  # oldest first already (Yahoo and most files)
    if len(dates) > 1 and (dates[1:] < dates[:-1]).all():
        return out.iloc[::-1].reset_index(drop=True)  # newest first (AlphaVantage)
    return out.sort_values("date", kind="stable", na_position="first").reset_index(drop=True)


def _numbers(values: np.ndarray) -> np.ndarray:
    """Text to floats, each exactly as Python reads it (``pd.to_numeric`` may be off by one
    unit in the last place); a value that is not a number becomes NaN."""

    def number(value: object) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    return np.fromiter((number(value) for value in values), dtype=float, count=len(values))


def _dates(values: pd.Series) -> pd.Series:
    """ISO dates (the fast, common case), else any format pandas can read; NaT when none."""
    if pd.api.types.is_datetime64_dtype(values):  # days already parsed by the CSV reader
        return values.astype("datetime64[ns]")
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if (parsed.isna() & values.notna()).any():
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    return parsed.dt.tz_localize(None).dt.normalize()


def _decode(content: bytes, where: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ParseError(f"{where}: not a text file (invalid UTF-8)") from None


def _load_json(text: str, where: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
