"""Data-quality checks on one symbol's bars. Pure functions returning findings, never printing.

A finding is ``fatal`` when the symbol must be quarantined: no bad bar may reach ``prices``.
Informational findings (identical duplicates merged, real market closures) are reported only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core.params import ValidationParams

# Split ratios seen in practice (k-for-1 and reverse); 1.5 is a 3-for-2 split.
_SPLIT_RATIOS = np.array([1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30, 50])
_EXAMPLES = 3


@dataclass
class Findings:
    """What the checks found for one symbol."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    @property
    def fatal(self) -> bool:
        return bool(self.problems)


def _dates(frame: pd.DataFrame, mask: pd.Series) -> str:
    return _list(frame.loc[mask, "date"])


def _list(dates: pd.Series) -> str:
    shown = ", ".join(
        "unparseable" if pd.isna(d) else str(pd.Timestamp(d).date()) for d in dates[:_EXAMPLES]
    )
    more = f" and {len(dates) - _EXAMPLES} more" if len(dates) > _EXAMPLES else ""
    return f"{shown}{more}"


def check_structure(bars: pd.DataFrame, findings: Findings) -> pd.DataFrame:
    """Checks dates, duplicates, prices, OHLC consistency and volume on raw bars.

    Identical duplicate rows are merged (noted); everything else is a fatal finding. The checks
    run on NumPy arrays; a message (with example dates) is built only for a check that fails.

    Args:
        bars: One symbol's parsed bars.
        findings: Collects problems and notes.

    Returns:
        The bars with identical duplicates merged (a new frame).
    """
    bad_dates = bars["date"].isna().to_numpy()
    if bad_dates.any():
        findings.fail(f"{int(bad_dates.sum())} row(s) with an unparseable date")
        bars = bars[~bad_dates]

    # Comparing whole rows is costly: do it only when some date repeats (parsers sort by date,
    # so a repeat sits next to its twin; the hash lookup is for unsorted input).
    dates = bars["date"].to_numpy()
    repeats = (
        bool((dates[1:] == dates[:-1]).any())
        if bars["date"].is_monotonic_increasing
        else bool(bars["date"].duplicated().any())
    )
    if repeats:
        identical = bars.duplicated(keep="first")
        if identical.any():
            findings.note(f"{int(identical.sum())} identical duplicate row(s) merged")
            bars = bars[~identical]
        conflicting = bars["date"].duplicated(keep=False)
        if conflicting.any():
            repeated = bars.loc[conflicting, "date"].drop_duplicates()
            findings.fail(
                f"conflicting duplicate bars on {len(repeated)} date(s): {_list(repeated)}"
            )

    values = {name: bars[name].to_numpy(dtype=float) for name in (*_PRICES, "volume")}
    with np.errstate(invalid="ignore"):
        for name in _PRICES:
            _fail_where(findings, bars, np.isnan(values[name]), f"missing or non-numeric {name}")
            _fail_where(findings, bars, values[name] <= 0, f"non-positive {name}")
        body_low = np.minimum(values["open"], values["close"])
        body_high = np.maximum(values["open"], values["close"])
        inconsistent = (
            (values["low"] > body_low)
            | (values["high"] < body_high)
            | (values["low"] > values["high"])
        )
        _fail_where(findings, bars, inconsistent, "low/high inconsistent with open/close")
        _fail_where(findings, bars, np.isnan(values["volume"]), "missing or non-numeric volume")
        _fail_where(findings, bars, values["volume"] < 0, "negative volume")
    return bars.reset_index(drop=True)


_PRICES = ("open", "high", "low", "close")


def _fail_where(findings: Findings, bars: pd.DataFrame, mask: np.ndarray, problem: str) -> None:
    if mask.any():
        findings.fail(f"{problem} on {_dates(bars, pd.Series(mask, index=bars.index))}")


def check_calendar(
    bars: pd.DataFrame,
    findings: Findings,
    params: ValidationParams,
    reference_date: pd.Timestamp,
) -> int:
    """Checks bars against NYSE sessions: off-calendar bars, gaps and a stale last bar.

    Returns:
        The number of NYSE sessions with no bar inside the symbol's date range.
    """
    if bars.empty:
        findings.fail("no bars")
        return 0
    dates = pd.DatetimeIndex(bars["date"])
    sessions = calendar.sessions_between(dates.min(), dates.max())
    off_calendar = ~dates.isin(sessions)
    if off_calendar.any():
        findings.fail(
            f"{int(off_calendar.sum())} bar(s) on days NYSE was closed: "
            f"{_dates(bars, pd.Series(off_calendar, index=bars.index))}"
        )
    missing = sessions.difference(dates)
    if len(missing):
        share = len(missing) / max(len(sessions), 1)
        message = (
            f"{len(missing)} NYSE session(s) without a bar ({share:.2%}), e.g. "
            f"{', '.join(str(d.date()) for d in missing[:_EXAMPLES])}"
        )
        if share > params.max_missing_session_ratio:
            findings.fail(message)
        else:
            findings.note(message)
    behind = calendar.sessions_behind(dates.max(), reference_date)
    if behind > params.max_stale_sessions:
        findings.fail(
            f"stale: last bar {dates.max().date()} is {behind} session(s) behind "
            f"{pd.Timestamp(reference_date).date()}"
        )
    return len(missing)


def check_split_jumps(adjusted: pd.DataFrame, findings: Findings, params: ValidationParams) -> None:
    """Flags close-to-close moves on adjusted bars that look like an unrecorded split.

    Run after adjustment: recorded splits and dividends are then smooth, so a remaining jump by
    a typical split ratio (2:1, 3:1, 3:2, 1:10, ...) means the series is not adjusted for it.
    Both the close-to-close move and the overnight gap (previous close to open) are checked:
    the stock trades all day after the split, so the close can drift well away from the exact
    ratio (AAPL 2020-08-31: 4:1 split, close-to-close x0.258 = 1/3.87) while the open is close
    to it (x0.256 = 1/3.91).
    """
    close = adjusted["close"].to_numpy(dtype=float)
    if len(close) < 2:
        return
    ratio = close[1:] / close[:-1]
    looks_like_split = _looks_like_split(ratio, params) | _looks_like_split(
        adjusted["open"].to_numpy(dtype=float)[1:] / close[:-1], params
    )
    if looks_like_split.any():
        where = np.flatnonzero(looks_like_split) + 1
        shown = ", ".join(
            f"{adjusted['date'].iloc[i].date()} (x{ratio[i - 1]:.3f})" for i in where[:_EXAMPLES]
        )
        findings.fail(f"price jump(s) that look like an unrecorded split: {shown}")


def _looks_like_split(ratio: np.ndarray, params: ValidationParams) -> np.ndarray:
    """Whether each price ratio is a big move within tolerance of a typical split ratio."""
    big = np.abs(ratio - 1) >= params.split_jump_min_move
    if not big.any():
        return big
    factor = np.where(ratio < 1, 1 / ratio, ratio)
    nearest = _SPLIT_RATIOS[np.abs(factor[:, None] - _SPLIT_RATIOS[None, :]).argmin(axis=1)]
    return big & (np.abs(factor / nearest - 1) <= params.split_ratio_tolerance)


def check_spikes(bars: pd.DataFrame, findings: Findings, params: ValidationParams) -> int:
    """Flags one-day outliers that revert: a bad print, not a market move.

    A close is a spike when its log return from the previous close is both at least
    ``spike_min_move`` and ``spike_robust_sigmas`` robust standard deviations (1.4826 x the
    median absolute deviation of the symbol's own daily log returns) away from the median, and
    the next close moves back by at least ``spike_revert_share`` of it in the opposite direction
    (7604.55 between 79.60 and 77.60: x95.5, then x0.0102). Real large moves (earnings, crashes)
    rarely revert half of themselves the next day; a mistyped or shifted price always does. With
    ``spike_action: quarantine`` the symbol is quarantined (no bad bar reaches ``prices``); with
    ``note`` the spike is only reported.

    Args:
        bars: One symbol's bars, sorted by date (adjusted, so splits are not moves).
        findings: Collects the problem or note, naming each spike's date and prices.
        params: ``data_ingestion.validation``.

    Returns:
        The number of spikes found.
    """
    close = bars["close"].to_numpy(dtype=float)
    if len(close) < 3:
        return 0
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.diff(np.log(close))
    finite = moves[np.isfinite(moves)]
    if finite.size < 3:
        return 0
    median = float(np.median(finite))
    # A floor keeps a flat series (MAD 0) from making every tick an outlier.
    sigma = max(1.4826 * float(np.median(np.abs(finite - median))), 1e-4)
    move, back = moves[:-1], moves[1:]
    with np.errstate(invalid="ignore"):
        spikes = (
            (np.abs(move) >= params.spike_min_move)
            & (np.abs(move - median) >= params.spike_robust_sigmas * sigma)
            & (np.sign(back) == -np.sign(move))
            & (np.abs(back) >= params.spike_revert_share * np.abs(move))
        )
    where = np.flatnonzero(spikes) + 1  # index of the spiking bar
    if not len(where):
        return 0
    dates = bars["date"]
    shown = ", ".join(
        f"{pd.Timestamp(dates.iloc[i]).date()} close {close[i]:.2f} between {close[i - 1]:.2f} "
        f"and {close[i + 1]:.2f} (x{close[i] / close[i - 1]:.3g}, "
        f"then x{close[i + 1] / close[i]:.3g})"
        for i in where[:_EXAMPLES]
    )
    more = f" and {len(where) - _EXAMPLES} more" if len(where) > _EXAMPLES else ""
    message = f"one-day price spike(s) that revert the next day: {shown}{more}"
    if params.spike_action == "quarantine":
        findings.fail(message)
    else:
        findings.note(message)
    return len(where)
