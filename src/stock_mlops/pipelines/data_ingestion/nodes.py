"""Nodes of the data_ingestion pipeline: request prices, then parse, validate and adjust them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.params import DataIngestionParams
from stock_mlops.pipelines.data_ingestion.adjustment import adjust_bars, merge_history
from stock_mlops.pipelines.data_ingestion.parsers import ParseError, parse_payload
from stock_mlops.pipelines.data_ingestion.validation import (
    Findings,
    check_calendar,
    check_spikes,
    check_split_jumps,
    check_structure,
)
from stock_mlops.sources.base import ArchivedPrices, FetchFailure, PriceRequest, RawPayload

logger = logging.getLogger(__name__)

REPORT_COLUMNS = [
    C.SYMBOL,
    "source",
    "origin",
    "stage",
    "rows_in",
    "rows_kept",
    "first_date",
    "last_date",
    "missing_sessions",
    "quarantined",
    "reason",
    "notes",
]


class NoValidDataError(ValueError):
    """Every requested symbol failed; the message lists each symbol and why.

    ``report`` is this run's quality report: the project hook saves it as
    ``data_quality_report`` although the node failed, so the report always describes the last
    run.
    """

    def __init__(self, message: str, report: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.report = report


class RunDateError(ValueError):
    """``run_date`` lies after the newest bar: the message names the nearest sessions."""


def build_price_request(params: DataIngestionParams, run_date: str | None) -> PriceRequest:
    """Turns the ingestion parameters into the request the raw-price archive executes.

    Args:
        params: ``params:data_ingestion``.
        run_date: ``params:run_date``: prices as known at that session's close (None: now).

    Returns:
        The request, carrying only the chosen source's settings.
    """
    request = PriceRequest(
        as_of=pd.Timestamp(run_date).date() if run_date else None,
        source=params.source,
        symbols=tuple(params.symbols),
        universe=params.universe if params.source == "bundled" else None,
        csv_dir=params.csv_dir if params.source == "csv" else None,
        csv_symbol_regex=params.csv_symbol_regex if params.source == "csv" else None,
        alphavantage=params.alphavantage if params.source == "alphavantage" else None,
        alpaca=params.alpaca if params.source == "alpaca" else None,
    )
    logger.info(
        "requesting %s prices for %s",
        f"bundled ({params.universe})" if params.source == "bundled" else params.source,
        list(params.symbols) or "all",
    )
    return request


def clean_prices(
    raw_prices: ArchivedPrices, params: DataIngestionParams, run_date: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parses, validates and adjusts every symbol's archived payloads.

    A symbol with any fatal finding is quarantined whole: none of its bars reach ``prices``.
    With a ``run_date``, prices are as known at that session's close: no bar dated after it is
    kept, and a symbol without a bar on that date is named in the report (it is not predicted
    or traded that day).

    Args:
        raw_prices: What the raw-price archive loads (payloads per symbol and fetch failures).
        params: ``params:data_ingestion``.
        run_date: ``params:run_date``; None means the newest bar of any symbol.

    Returns:
        ``prices`` (long, adjusted) and ``data_quality_report`` (one row per symbol or file,
        with the file or response it came from).

    Raises:
        NoValidDataError: When no symbol passes.
        RunDateError: When ``run_date`` is after the newest bar of every symbol.
    """
    source = raw_prices.request.source
    archived = set(raw_prices.payloads)
    report: list[dict[str, Any]] = [
        _failure_row(failure, has_history=failure.symbol in archived)
        for failure in raw_prices.failures
    ]

    merged: dict[str, pd.DataFrame] = {}
    for symbol, payloads in sorted(raw_prices.payloads.items()):
        try:
            merged[symbol] = _merge_payloads(payloads, params.start_date)
        except (ParseError, ValueError) as exc:
            report.append(_row(symbol, source, "parse", 0, reason=str(exc)))

    reference = _newest_session(merged)
    if run_date:
        reference = _check_run_date(pd.Timestamp(run_date), reference)
        merged = {symbol: bars[~(bars["date"] > reference)] for symbol, bars in merged.items()}
    kept: dict[str, pd.DataFrame] = {}
    for symbol, bars in merged.items():
        if bars.empty:
            report.append(_row(symbol, source, "validate", 0, reason=_no_bar_yet(reference)))
            continue
        clean, row = _validate_symbol(symbol, source, bars, params, reference)
        if clean is not None and clean["date"].iloc[-1] < reference:
            row["notes"] = _join(row["notes"], f"no bar on {reference.date()}: skipped that day")
        row["notes"] = _join(raw_prices.notes.get(symbol, ""), row["notes"])
        report.append(row)
        if clean is not None:
            kept[symbol] = clean

    quality = pd.DataFrame(report, columns=REPORT_COLUMNS)
    # Which file or response each row is about (file names can differ from symbols).
    origins = {symbol: payloads[-1].origin for symbol, payloads in raw_prices.payloads.items()}
    quality["origin"] = quality[C.SYMBOL].map(origins)
    for row in quality[quality["quarantined"]].itertuples():
        logger.warning("quarantined %s (%s): %s", row.symbol, row.stage, row.reason)
    if not kept:
        reasons = "; ".join(f"{r.symbol}: {r.reason}" for r in quality.itertuples())
        raise NoValidDataError(f"no symbol passed validation: {reasons}", report=quality)

    prices = _long_table(kept)
    logger.info("prices: %d bars for %d symbols", len(prices), len(kept))
    return prices, quality


def _long_table(bars_by_symbol: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One long ``prices`` table, sorted by symbol and date, from each symbol's sorted bars.

    Built column by column with one shared string object per symbol (as Parquet gives them
    back), so nothing needs sorting or copying twice.
    """
    symbols = sorted(bars_by_symbol)
    parts = [bars_by_symbol[symbol] for symbol in symbols]
    counts = [len(part) for part in parts]
    columns = {C.SYMBOL: np.repeat(np.array(symbols, dtype=object), counts)}
    for name in C.PRICE_COLUMNS[1:]:
        columns[name] = np.concatenate([part[name].to_numpy() for part in parts])
    return pd.DataFrame(columns, copy=False)


def _check_run_date(run_date: pd.Timestamp, newest: pd.Timestamp) -> pd.Timestamp:
    """``run_date``, unless it is after the newest bar of every symbol."""
    if pd.notna(newest) and run_date > newest:
        earlier = calendar.previous_session(newest)
        raise RunDateError(
            f"run_date {run_date.date()} is after the newest bar in the data "
            f"({newest.date()}); the nearest sessions with data are {earlier.date()} and "
            f"{newest.date()}"
        )
    return run_date


def _no_bar_yet(run_date: pd.Timestamp) -> str:
    return f"no bar on or before run_date {run_date.date()}"


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _newest_session(merged: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The newest last bar among symbols whose last bar is an NYSE session.

    A last bar off the calendar (a typo such as 2099-12-29) is that symbol's problem: letting
    it set the as-of date would make every other symbol look stale.
    """
    last_bars = [bars["date"].max() for bars in merged.values() if bars["date"].notna().any()]
    sessions = [day for day in last_bars if len(calendar.sessions_between(day, day)) == 1]
    return max(sessions or last_bars, default=pd.NaT)


def _merge_payloads(payloads: list[RawPayload], start_date: dt.date | None) -> pd.DataFrame:
    # A full or file payload replaces everything archived before it: older objects (perhaps a
    # broken file since corrected) are kept in the archive but not parsed again.
    latest_complete = max(
        (i for i, payload in enumerate(payloads) if payload.kind != "compact"), default=0
    )
    frames = [(payload.kind, parse_payload(payload)) for payload in payloads[latest_complete:]]
    bars = merge_history(frames)
    if start_date is not None:
        bars = bars[bars["date"] >= pd.Timestamp(start_date)].reset_index(drop=True)
    return bars


def _validate_symbol(
    symbol: str,
    source: str,
    bars: pd.DataFrame,
    params: DataIngestionParams,
    reference: pd.Timestamp,
) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    findings = Findings()
    rows_in = len(bars)
    checked = check_structure(bars, findings)
    missing = 0
    if not findings.fatal:
        missing = check_calendar(checked, findings, params.validation, reference)
    adjusted = None
    if not findings.fatal:
        adjusted = adjust_bars(checked)
        check_spikes(adjusted, findings, params.validation)
        check_split_jumps(adjusted, findings, params.validation)
    if not findings.fatal and len(checked) < params.validation.min_rows:
        findings.fail(f"only {len(checked)} bars, fewer than min_rows={params.validation.min_rows}")
    row = _row(
        symbol,
        source,
        "validate",
        rows_in,
        rows_kept=0 if findings.fatal else len(checked),
        first=checked["date"].min() if len(checked) else None,
        last=checked["date"].max() if len(checked) else None,
        missing=missing,
        reason="; ".join(findings.problems),
        notes="; ".join(findings.notes),
    )
    return (None if findings.fatal else adjusted), row


def _row(
    symbol: str,
    source: str,
    stage: str,
    rows_in: int,
    *,
    rows_kept: int = 0,
    first: pd.Timestamp | None = None,
    last: pd.Timestamp | None = None,
    missing: int = 0,
    reason: str = "",
    notes: str = "",
) -> dict[str, Any]:
    return {
        C.SYMBOL: symbol,
        "source": source,
        "stage": stage,
        "rows_in": rows_in,
        "rows_kept": rows_kept,
        "first_date": None if first is None else str(pd.Timestamp(first).date()),
        "last_date": None if last is None else str(pd.Timestamp(last).date()),
        "missing_sessions": missing,
        "quarantined": bool(reason),
        "reason": reason,
        "notes": notes,
    }


def _failure_row(failure: FetchFailure, has_history: bool) -> dict[str, Any]:
    if has_history:
        # The refresh failed but the archive still holds the symbol's history: not quarantined,
        # the validate row decides; the failure is reported as a note.
        note = f"refresh failed, archived history used: {failure.reason}"
        return _row(failure.symbol, failure.source, "fetch", 0, notes=note)
    return _row(failure.symbol, failure.source, "fetch", 0, reason=failure.reason)
