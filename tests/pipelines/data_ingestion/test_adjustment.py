"""Split/dividend adjustment and history merging, on the real AlphaVantage AAPL file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES

from stock_mlops.pipelines.data_ingestion.adjustment import (
    adjust_bars,
    merge_history,
    round_split_coefficient,
)

AAPL_FILE = FIXTURES / "prices" / "alphavantage_daily_adjusted" / "DA-AAPL-T-2021-04-21.csv"
SPLIT_DAYS = {"2000-06-21": 2, "2005-02-28": 2, "2014-06-09": 7, "2020-08-31": 4}


@pytest.fixture(scope="module")
def aapl() -> pd.DataFrame:
    """Raw OHLC + adjusted_close + dividend + split of AAPL 1999-11..2021-04 (real file)."""
    return pd.read_csv(AAPL_FILE, parse_dates=["timestamp"]).rename(columns={"timestamp": "date"})


def at(frame: pd.DataFrame, day: str) -> pd.Series:
    """The bar dated ``day``."""
    return frame.loc[frame["date"] == pd.Timestamp(day)].iloc[0]


def day_ratios(frame: pd.DataFrame, field: str = "close") -> pd.Series:
    """Close-to-close ratio per date (the first row has none)."""
    return frame.set_index("date")[field].pipe(lambda s: s / s.shift(1))


# ------------------------------------------------------------------- with adjusted_close
def test_adjusted_prices_are_continuous_across_the_splits(aapl):
    raw_ratio = day_ratios(aapl)
    adjusted_ratio = day_ratios(adjust_bars(aapl))

    for day, split in SPLIT_DAYS.items():
        assert raw_ratio[day] == pytest.approx(1 / split, rel=0.1)  # the raw series jumps
        assert 0.85 < adjusted_ratio[day] < 1.15, day  # the adjusted one does not


def test_close_equals_adjusted_close_and_ohlc_keep_their_proportions(aapl):
    adjusted = adjust_bars(aapl)

    np.testing.assert_allclose(adjusted["close"], aapl["adjusted_close"], rtol=1e-12)
    for field in ("open", "high", "low"):
        np.testing.assert_allclose(
            adjusted[field] / adjusted["close"], aapl[field] / aapl["close"], rtol=1e-12
        )
    assert list(adjusted.columns) == ["date", "open", "high", "low", "close", "volume"]


def test_volume_is_multiplied_by_the_rounded_split_factor_before_each_split(aapl):
    adjusted = adjust_bars(aapl)

    expected_factor = {
        "1999-11-01": 2 * 2 * 7 * 4,
        "2000-06-20": 2 * 2 * 7 * 4,
        "2000-06-21": 2 * 7 * 4,  # the ex-date itself already trades split
        "2005-02-25": 2 * 7 * 4,
        "2005-02-28": 7 * 4,
        "2014-06-06": 7 * 4,
        "2014-06-09": 4,
        "2020-08-28": 4,
        "2020-08-31": 1,
        "2021-04-21": 1,
    }
    for day, factor in expected_factor.items():
        # Exact: 7.00000700001 is rounded to 7 before it multiplies anything.
        assert at(adjusted, day)["volume"] == at(aapl, day)["volume"] * factor, day


def test_adjust_bars_does_not_modify_its_input(aapl):
    before = aapl.copy()
    adjust_bars(aapl)
    pd.testing.assert_frame_equal(aapl, before)


def test_a_dividend_is_smooth_after_adjustment():
    googl = pd.read_csv(
        AAPL_FILE.with_name("DA-GOOGL-T-2021-04-21.csv"), parse_dates=["timestamp"]
    ).rename(columns={"timestamp": "date"})
    # The class C distribution is recorded as a 567.97 "dividend": raw closes halve.
    assert day_ratios(googl)["2014-04-03"] == pytest.approx(0.503, abs=0.001)
    assert 0.95 < day_ratios(adjust_bars(googl))["2014-04-03"] < 1.05


# ---------------------------------------------------------------------- split coefficient
@pytest.mark.parametrize(
    ("vendor", "rounded"),
    [
        (7.00000700001, 7.0),
        (1.49999925, 1.5),  # NVDA 2007 3:2
        (4.0, 4.0),
        (1.0, 1.0),
        (0.1, 0.1),  # 1:10 reverse split
        (0.0, 1.0),
        (-2.0, 1.0),
        (float("nan"), 1.0),
    ],
)
def test_split_coefficient_rounding(vendor, rounded):
    assert round_split_coefficient(vendor) == rounded


# ---------------------------------------------------------------------------- split only
def test_split_only_series_is_divided_by_future_split_factors(aapl):
    split_only = aapl.drop(columns=["adjusted_close"])

    adjusted = adjust_bars(split_only)

    for day, divisor in {
        "2014-06-06": 28,
        "2014-06-09": 4,
        "2020-08-28": 4,
        "2020-08-31": 1,
    }.items():
        for field in ("open", "high", "low", "close"):
            assert at(adjusted, day)[field] == at(aapl, day)[field] / divisor, (day, field)
    ratios = day_ratios(adjusted)
    for day in SPLIT_DAYS:
        assert 0.85 < ratios[day] < 1.15, day


def test_partial_adjusted_close_falls_back_to_splits(aapl):
    partial = aapl.copy()
    partial.loc[10, "adjusted_close"] = np.nan

    adjusted = adjust_bars(partial)

    assert at(adjusted, "2014-06-06")["close"] == at(aapl, "2014-06-06")["close"] / 28


def test_series_without_adjustment_information_is_unchanged(aapl):
    plain = aapl[["date", "open", "high", "low", "close", "volume"]]
    pd.testing.assert_frame_equal(adjust_bars(plain), plain.astype({"volume": float}))


# --------------------------------------------------------------------------------- merging
def _window(frame: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    """Bars from ``start`` to ``end`` inclusive (None: unbounded), re-indexed."""
    keep = pd.Series(True, index=frame.index)
    if start:
        keep &= frame["date"] >= start
    if end:
        keep &= frame["date"] <= end
    return frame[keep].reset_index(drop=True)


def test_compact_window_rebases_older_adjusted_closes(aapl):
    # State of a full fetch made on 2020-08-28, before the 4:1 split and the later dividends:
    # the vendor's adjusted closes were then larger by a constant factor.
    then = _window(aapl, None, "2020-08-28")
    factor = at(aapl, "2020-08-28")["close"] / at(aapl, "2020-08-28")["adjusted_close"]
    old_full = then.assign(adjusted_close=then["adjusted_close"] * factor)
    # A compact fetch of 100 bars on 2021-01-12 covers the split and overlaps the full one.
    compact = _window(aapl, "2020-08-20", "2021-01-12")
    assert len(compact) == 100

    merged = merge_history([("full", old_full), ("compact", compact)])

    expected = _window(aapl, None, "2021-01-12")
    assert merged["date"].tolist() == expected["date"].tolist()
    np.testing.assert_allclose(merged["adjusted_close"], expected["adjusted_close"], rtol=1e-12)
    assert 0.85 < day_ratios(adjust_bars(merged))["2020-08-31"] < 1.15


def test_compact_window_overwrites_the_dates_it_covers(aapl):
    old = _window(aapl, "2020-01-02", "2020-08-28")
    revised = _window(aapl, "2020-08-03", "2020-09-30").assign(volume=lambda f: f["volume"] + 1)

    merged = merge_history([("full", old), ("compact", revised)])

    assert not merged["date"].duplicated().any()
    overlap = merged[merged["date"] >= "2020-08-03"]
    assert (overlap["volume"].to_numpy() == revised["volume"].to_numpy()).all()
    untouched = merged[merged["date"] < "2020-08-03"]
    pd.testing.assert_frame_equal(untouched, _window(aapl, "2020-01-02", "2020-07-31"))


def test_non_overlapping_compact_window_raises(aapl):
    old = _window(aapl, "2019-01-02", "2019-12-31")
    later = _window(aapl, "2020-06-01", "2020-10-30")

    with pytest.raises(ValueError, match="does not overlap .* a full fetch is needed"):
        merge_history([("full", old), ("compact", later)])


def test_a_later_full_fetch_replaces_everything_before_it(aapl):
    first = _window(aapl, "2019-01-02", "2019-12-31")
    second = _window(aapl, "2020-01-02", "2020-12-31")

    merged = merge_history([("full", first), ("file", second)])

    pd.testing.assert_frame_equal(merged, second)
