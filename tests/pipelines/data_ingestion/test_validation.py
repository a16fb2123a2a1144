"""Validation checks on real bars with real defects injected (one defect per test)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES

from stock_mlops.core import calendar
from stock_mlops.core.params import ValidationParams
from stock_mlops.pipelines.data_ingestion.adjustment import adjust_bars
from stock_mlops.pipelines.data_ingestion.parsers import parse_payload
from stock_mlops.pipelines.data_ingestion.validation import (
    Findings,
    check_calendar,
    check_spikes,
    check_split_jumps,
    check_structure,
)
from stock_mlops.sources.files import BundledSource

PARAMS = ValidationParams()
AV_DIR = FIXTURES / "prices" / "alphavantage_daily_adjusted"


def bundled(symbol: str) -> pd.DataFrame:
    """Split-adjusted real bars of the bundled snapshot, parsed."""
    return parse_payload(BundledSource().fetch(symbol))


def alphavantage(symbol: str) -> pd.DataFrame:
    """Raw AlphaVantage daily-adjusted bars (with adjusted_close, dividend, split), parsed."""
    frame = pd.read_csv(AV_DIR / f"DA-{symbol}-T-2021-04-21.csv", parse_dates=["timestamp"])
    return frame.rename(columns={"timestamp": "date"})


def unadjusted(symbol: str, start: str, end: str) -> pd.DataFrame:
    """Raw vendor closes with the adjustment information removed, cut to ``[start, end]``."""
    bars = alphavantage(symbol)
    bars = bars[(bars["date"] >= start) & (bars["date"] <= end)]
    return bars[["date", "open", "high", "low", "close", "volume"]].reset_index(drop=True)


def structure(bars: pd.DataFrame) -> tuple[pd.DataFrame, Findings]:
    """Runs check_structure on ``bars`` with fresh findings."""
    findings = Findings()
    return check_structure(bars, findings), findings


@pytest.fixture(scope="module")
def msft() -> pd.DataFrame:
    """Clean real bars to inject one defect into per test."""
    return bundled("MSFT")


# --------------------------------------------------------------------------------- structure
def test_clean_real_bars_pass_every_structure_check(msft):
    checked, findings = structure(msft)

    assert findings.problems == [] and findings.notes == []
    pd.testing.assert_frame_equal(checked, msft)


def test_identical_duplicates_are_merged_and_noted(msft):
    doubled = pd.concat([msft, msft.iloc[[10, 20]]], ignore_index=True)

    checked, findings = structure(doubled)

    assert not findings.fatal
    assert findings.notes == ["2 identical duplicate row(s) merged"]
    assert len(checked) == len(msft)
    assert not checked["date"].duplicated().any()


def test_conflicting_duplicates_are_fatal_and_named(msft):
    conflicting = msft.iloc[[10]].assign(close=msft["close"].iloc[10] * 1.01)
    doubled = pd.concat([msft, conflicting], ignore_index=True)

    _, findings = structure(doubled)

    assert findings.fatal
    day = msft["date"].iloc[10].date()
    assert f"conflicting duplicate bars on 1 date(s): {day}" in findings.problems


@pytest.mark.parametrize("value", [0.0, -12.5])
@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
def test_non_positive_prices_are_fatal(msft, field, value):
    bad = msft.copy()
    bad.loc[100, field] = value

    _, findings = structure(bad)

    assert f"non-positive {field} on {msft['date'].iloc[100].date()}" in findings.problems


def test_missing_prices_are_fatal(msft):
    bad = msft.copy()
    bad.loc[[5, 6, 7, 8], "close"] = np.nan

    _, findings = structure(bad)

    dates = ", ".join(str(d.date()) for d in msft["date"].iloc[5:8])
    assert f"missing or non-numeric close on {dates} and 1 more" in findings.problems


@pytest.mark.parametrize(
    "change",
    [
        {"low": "above_body"},  # low above min(open, close)
        {"high": "below_body"},  # high below max(open, close)
    ],
)
def test_low_high_inconsistent_with_open_close_is_fatal(msft, change):
    bad = msft.copy()
    row = bad.loc[200]
    if "low" in change:
        bad.loc[200, "low"] = min(row["open"], row["close"]) * 1.001
    else:
        bad.loc[200, "high"] = max(row["open"], row["close"]) * 0.999

    _, findings = structure(bad)

    day = msft["date"].iloc[200].date()
    assert f"low/high inconsistent with open/close on {day}" in findings.problems


def test_negative_and_missing_volume_are_fatal(msft):
    bad = msft.copy()
    bad.loc[50, "volume"] = -100
    bad.loc[60, "volume"] = np.nan

    _, findings = structure(bad)

    assert f"negative volume on {msft['date'].iloc[50].date()}" in findings.problems
    assert f"missing or non-numeric volume on {msft['date'].iloc[60].date()}" in findings.problems


def test_unparseable_dates_are_fatal(msft):
    bad = msft.copy()
    bad.loc[3, "date"] = pd.NaT

    checked, findings = structure(bad)

    assert "1 row(s) with an unparseable date" in findings.problems
    assert checked["date"].notna().all()


# ---------------------------------------------------------------------------------- calendar
def test_real_market_closures_are_not_gaps():
    bars = alphavantage("IBM")
    closures = pd.to_datetime(
        ["2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14", "2007-01-02"]
        + ["2012-10-29", "2012-10-30"]
    )
    assert not bars["date"].isin(closures).any()  # the real file has no bar on those days

    findings = Findings()
    missing = check_calendar(bars, findings, PARAMS, bars["date"].max())

    assert missing == 0
    assert findings.problems == [] and findings.notes == []


def test_bars_on_days_nyse_was_closed_are_fatal(msft):
    bad = msft.copy()
    bad.loc[bad["date"] == "2019-07-05", "date"] = pd.Timestamp("2019-07-04")  # Independence Day
    assert not calendar.is_session(pd.Timestamp("2019-07-04"))

    findings = Findings()
    check_calendar(bad, findings, PARAMS, bad["date"].max())

    assert "1 bar(s) on days NYSE was closed: 2019-07-04" in findings.problems


def test_a_few_missing_sessions_are_noted_not_fatal(msft):
    gap = msft[msft["date"] != "2018-03-14"].reset_index(drop=True)

    findings = Findings()
    missing = check_calendar(gap, findings, PARAMS, gap["date"].max())

    assert missing == 1
    assert not findings.fatal
    assert findings.notes[0].startswith("1 NYSE session(s) without a bar")
    assert "2018-03-14" in findings.notes[0]


def test_many_missing_sessions_are_fatal(msft):
    holey = msft.iloc[::10].reset_index(drop=True)

    findings = Findings()
    missing = check_calendar(holey, findings, PARAMS, holey["date"].max())

    sessions = calendar.sessions_between(holey["date"].min(), holey["date"].max())
    assert missing == len(sessions) - len(holey) > 2000
    assert findings.fatal
    assert "NYSE session(s) without a bar" in findings.problems[0]


def test_stale_last_bar_is_fatal_only_beyond_the_allowed_sessions(msft):
    last = msft["date"].max()  # 2023-12-29
    within = pd.Timestamp("2024-01-04")  # 3 sessions later (Jan 1 is a holiday)
    beyond = pd.Timestamp("2024-01-05")  # 4 sessions later

    ok, stale = Findings(), Findings()
    check_calendar(msft, ok, PARAMS, within)
    check_calendar(msft, stale, PARAMS, beyond)

    assert calendar.sessions_behind(last, within) == PARAMS.max_stale_sessions
    assert not ok.fatal
    assert stale.problems == ["stale: last bar 2023-12-29 is 4 session(s) behind 2024-01-05"]


def test_no_bars_is_fatal():
    findings = Findings()
    empty = bundled("AAPL").iloc[0:0]
    assert check_calendar(empty, findings, PARAMS, pd.Timestamp("2020-01-02")) == 0
    assert findings.problems == ["no bars"]


# ------------------------------------------------------------------------------- split jumps
@pytest.mark.parametrize(
    ("symbol", "start", "end", "split_day"),
    [
        ("AAPL", "2020-06-01", "2020-12-31", "2020-08-31"),  # 4:1, close moved 3.4 % that day
        ("AAPL", "2014-03-03", "2014-09-30", "2014-06-09"),  # 7:1
        ("TSLA", "2020-06-01", "2020-12-31", "2020-08-31"),  # 5:1, close moved 12.6 % that day
        ("GOOGL", "2014-01-02", "2014-06-30", "2014-04-03"),  # class C distribution, unadjusted
    ],
)
def test_unrecorded_split_on_an_unadjusted_series_is_fatal(symbol, start, end, split_day):
    bars = unadjusted(symbol, start, end)

    findings = Findings()
    check_split_jumps(adjust_bars(bars), findings, PARAMS)

    assert findings.fatal
    assert "look like an unrecorded split" in findings.problems[0]
    assert split_day in findings.problems[0]


@pytest.mark.parametrize("symbol", ["AAPL", "TSLA", "GOOGL", "NVDA", "KO"])
def test_recorded_splits_and_dividends_are_not_flagged(symbol):
    findings = Findings()
    check_split_jumps(adjust_bars(alphavantage(symbol)), findings, PARAMS)
    assert findings.problems == []


def test_split_adjusted_snapshot_and_a_real_crash_are_not_flagged():
    findings = Findings()
    meta = bundled("META")
    # META fell 26 % on 2022-02-03: a big move, but no split ratio.
    move = meta.set_index("date")["close"].pct_change().loc["2022-02-03"]
    assert move < -0.25

    check_split_jumps(meta, findings, PARAMS.model_copy(update={"split_jump_min_move": 0.2}))

    assert findings.problems == []


# ------------------------------------------------------------------------------------ spikes
def spiked(symbol: str = "MSFT", day: str = "2023-05-03", factor: float = 95.5) -> pd.DataFrame:
    """Real bundled bars with one close multiplied by ``factor`` (the issue's x95 print)."""
    bars = bundled(symbol).copy(deep=True)
    row = bars.index[bars["date"] == day][0]
    price = bars.at[row, "close"] * factor
    bars.at[row, "close"] = price
    bars.at[row, "high"] = max(bars.at[row, "high"], price)
    bars.at[row, "low"] = min(bars.at[row, "low"], price)
    return bars


def test_a_one_day_spike_that_reverts_is_quarantined_with_its_date_and_prices():
    bars = spiked()
    findings = Findings()
    assert check_spikes(adjust_bars(bars), findings, PARAMS) == 1
    assert findings.fatal
    (problem,) = findings.problems
    assert problem.startswith("one-day price spike(s) that revert the next day: 2023-05-03 close")
    assert re.search(r"between [\d.]+ and [\d.]+ \(x95\.\d, then x0\.01\d+\)$", problem), problem


def test_a_one_day_drop_that_reverts_is_a_spike_too():
    findings = Findings()
    assert check_spikes(adjust_bars(spiked(factor=0.1)), findings, PARAMS) == 1


def test_a_spike_can_be_only_noted():
    findings = Findings()
    check_spikes(
        adjust_bars(spiked()), findings, PARAMS.model_copy(update={"spike_action": "note"})
    )
    assert not findings.fatal and "one-day price spike" in findings.notes[0]


def test_a_move_that_does_not_revert_is_no_spike():
    # The same x1.8 jump kept from that day on: a level shift (a real move or an unrecorded
    # split, which check_split_jumps judges), not a bad print.
    bars = bundled("MSFT").copy(deep=True)
    later = (bars["date"] >= "2023-05-03").to_numpy()
    for column in ("open", "high", "low", "close"):
        bars[column] = np.where(later, bars[column] * 1.8, bars[column])
    findings = Findings()
    assert check_spikes(adjust_bars(bars), findings, PARAMS) == 0


@pytest.mark.parametrize("symbol", BundledSource().list_symbols())
def test_no_real_bundled_series_has_a_spike(symbol):
    findings = Findings()
    assert check_spikes(adjust_bars(bundled(symbol)), findings, PARAMS) == 0, findings.problems


@pytest.mark.parametrize("path", sorted(AV_DIR.glob("DA-*.csv")), ids=lambda p: p.name[3:-17])
def test_no_real_alphavantage_series_has_a_spike(path):
    # Adjusted vendor history from 1999 on: NVDA's +43% day, the 2008 crash, AAPL's splits.
    symbol = path.name.split("-")[1]
    findings = Findings()
    assert check_spikes(adjust_bars(alphavantage(symbol)), findings, PARAMS) == 0, findings.problems
