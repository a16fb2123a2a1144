"""The NYSE trading calendar (exchange_calendars' XNYS): sessions, next session, gaps.

Real market closures (2001-09-11..14, 2012-10-29..30, national days of mourning) are not sessions,
so a bar missing on those dates is not a gap.
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from stock_mlops.core.vocabulary import NS_PER_DAY

_FIRST = "1990-01-02"
# The exchange's time zone: sessions, closes and schedules are New York times.
NEW_YORK = ZoneInfo("America/New_York")


@functools.cache
def _nyse():  # noqa: ANN202 - exchange_calendars' type is an implementation detail here
    import exchange_calendars as xcals  # noqa: PLC0415 - 1.5 s import, only when needed

    return xcals.get_calendar("XNYS", start=_FIRST)


def sessions_between(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """NYSE sessions from ``start`` to ``end`` inclusive (naive dates)."""
    cal = _nyse()
    start = max(pd.Timestamp(start).normalize(), cal.first_session)
    end = min(pd.Timestamp(end).normalize(), cal.last_session)
    if start > end:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(cal.sessions_in_range(start, end)).tz_localize(None)


def next_session(date: pd.Timestamp) -> pd.Timestamp:
    """The first NYSE session strictly after ``date``."""
    date = pd.Timestamp(date).normalize()
    upcoming = sessions_between(date + pd.Timedelta(days=1), date + pd.Timedelta(days=15))
    if upcoming.empty:
        raise ValueError(f"{date.date()} is outside the NYSE calendar's range")
    return upcoming[0]


def next_sessions_array(dates: np.ndarray) -> np.ndarray:
    """The first NYSE session strictly after each date (``datetime64[ns]``; NaT stays NaT).

    One calendar lookup per distinct day, not per row: millions of rows cost a few milliseconds.
    """
    dates = np.asarray(dates, dtype="datetime64[ns]")
    missing = np.isnat(dates)
    if missing.all():
        return dates.copy()
    # Whole days since the epoch (floor division keeps dates before 1970 right).
    days = dates.view(np.int64) // NS_PER_DAY
    present = days[~missing] if missing.any() else days
    first, last = int(present.min()), int(present.max())
    span = (np.arange(first, last + 1) * NS_PER_DAY).astype("datetime64[ns]")
    sessions = sessions_between(
        pd.Timestamp(span[0]), pd.Timestamp(span[-1]) + pd.Timedelta(days=15)
    ).to_numpy(dtype="datetime64[ns]")
    following = sessions[np.searchsorted(sessions, span, side="right")]
    days -= first  # in place: positions in ``span`` (no further full-size temporaries)
    if missing.any():
        days[missing] = 0
    result = following[days]
    result[missing] = np.datetime64("NaT")
    return result


def next_sessions(dates: pd.Series) -> pd.Series:
    """Vectorised :func:`next_session` for a Series of dates (NaT stays NaT)."""
    return pd.Series(
        next_sessions_array(pd.to_datetime(dates).to_numpy(dtype="datetime64[ns]")),
        index=dates.index,
    )


def is_session(date: pd.Timestamp) -> bool:
    """Whether NYSE traded on ``date``."""
    return bool(_nyse().is_session(pd.Timestamp(date).normalize()))


def missing_sessions(dates: pd.Series) -> pd.DatetimeIndex:
    """NYSE sessions between the first and last of ``dates`` that have no bar."""
    observed = pd.DatetimeIndex(pd.to_datetime(dates)).normalize()
    if observed.empty:
        return pd.DatetimeIndex([])
    expected = sessions_between(observed.min(), observed.max())
    return expected.difference(observed)


def sessions_behind(last: pd.Timestamp, reference: pd.Timestamp) -> int:
    """How many sessions after ``last`` up to and including ``reference``."""
    if pd.Timestamp(last) >= pd.Timestamp(reference):
        return 0
    return len(sessions_between(pd.Timestamp(last) + pd.Timedelta(days=1), reference))


def previous_session(date: pd.Timestamp) -> pd.Timestamp:
    """The last NYSE session strictly before ``date``."""
    date = pd.Timestamp(date).normalize()
    earlier = sessions_between(date - pd.Timedelta(days=15), date - pd.Timedelta(days=1))
    if earlier.empty:
        raise ValueError(f"{date.date()} is outside the NYSE calendar's range")
    return earlier[-1]


def check_session(date: pd.Timestamp, what: str = "run_date") -> pd.Timestamp:
    """``date`` if NYSE traded on it; else a ValueError naming the sessions either side.

    Args:
        date: The date to check.
        what: How to call it in the message (a parameter name).

    Returns:
        The date as a normalised Timestamp.

    Raises:
        ValueError: When NYSE did not trade on ``date``.
    """
    day = pd.Timestamp(date).normalize()
    if is_session(day):
        return day
    before, after = previous_session(day), next_session(day)
    raise ValueError(
        f"{what} {day.date()} ({day.day_name()}) is not an NYSE session; the nearest sessions "
        f"are {before.date()} and {after.date()}"
    )
