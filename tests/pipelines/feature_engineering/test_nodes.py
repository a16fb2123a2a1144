"""Nodes of feature_engineering on real prices: indicators per symbol, targets, warm-up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from helpers import talib_expected

from stock_mlops.core import calendar, targets
from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams, ParameterError
from stock_mlops.pipelines.feature_engineering.nodes import (
    add_targets,
    build_features,
    compute_indicators,
    drop_warmup,
)
from stock_mlops.pipelines.feature_engineering.registry import feature_names

PARAMS = FeatureEngineeringParams()
NAMES = feature_names(PARAMS.indicators, PARAMS.calendar_features)
# MACD(12, 26, 9)'s signal line is the last feature to be defined: bar 33 (0-based).
WARMUP = 33


def by_symbol(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """The rows of one symbol, re-indexed."""
    return frame[frame[C.SYMBOL] == symbol].reset_index(drop=True)


@pytest.fixture(scope="module")
def indicators(small_prices: pd.DataFrame) -> pd.DataFrame:
    """Indicators with their warm-up rows (NaN), three real symbols."""
    return compute_indicators(small_prices, PARAMS)


@pytest.fixture(scope="module")
def features(small_prices: pd.DataFrame) -> pd.DataFrame:
    """The ``features`` node's output for three real symbols."""
    return build_features(small_prices, PARAMS)


# ------------------------------------------------------------------------ compute_indicators
def test_each_indicator_equals_talib_on_that_symbol_alone(small_prices, indicators):
    assert list(indicators.columns) == C.PRICE_COLUMNS + NAMES
    for symbol in small_prices[C.SYMBOL].unique():
        bars = by_symbol(small_prices, symbol).sort_values(C.DATE)
        expected = talib_expected(bars)
        assert set(expected) == set(NAMES)  # a new feature needs its expectation here
        got = by_symbol(indicators, symbol)
        pd.testing.assert_frame_equal(got[C.PRICE_COLUMNS], bars[C.PRICE_COLUMNS])
        for name in NAMES:
            np.testing.assert_allclose(
                got[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=f"{symbol} {name}"
            )


def test_indicators_do_not_mix_symbols(small_prices, indicators):
    # The second symbol starts warming up from scratch, not from the first symbol's tail.
    msft = by_symbol(indicators, "MSFT")
    assert msft[["sma_10", "rsi_14", "log_return_1d"]].iloc[0].isna().all()
    assert msft["sma_10"].iloc[:9].isna().all() and msft["sma_10"].iloc[9:].notna().all()
    assert msft["obv"].iloc[0] == by_symbol(small_prices, "MSFT")[C.VOLUME].iloc[0]


def test_compute_indicators_rejects_missing_columns_and_duplicate_bars(small_prices):
    with pytest.raises(ValueError, match=r"lack column\(s\) \['volume'\]"):
        compute_indicators(small_prices.drop(columns=[C.VOLUME]), PARAMS)
    doubled = pd.concat([small_prices, small_prices.iloc[[100]]])
    with pytest.raises(ValueError, match="more than one bar for a symbol and date"):
        compute_indicators(doubled, PARAMS)
    with pytest.raises(ValueError, match="without a date"):
        compute_indicators(
            small_prices.assign(date=small_prices[C.DATE].where(small_prices.index != 5)), PARAMS
        )


# ------------------------------------------------------------------------- warm-up handling
def test_warmup_rows_are_dropped_never_filled(small_prices, indicators, features):
    assert features[NAMES].notna().all().all()
    for symbol in small_prices[C.SYMBOL].unique():
        raw = by_symbol(indicators, symbol)
        got = by_symbol(features, symbol)
        assert raw[NAMES].iloc[:WARMUP].isna().any(axis=1).all()  # warm-up is NaN, not 0
        assert len(got) == len(raw) - WARMUP
        assert got[C.DATE].iloc[0] == raw[C.DATE].iloc[WARMUP]
        pd.testing.assert_frame_equal(
            got[C.PRICE_COLUMNS + NAMES], raw.iloc[WARMUP:].reset_index(drop=True)
        )


def test_drop_warmup_keeps_only_complete_rows(indicators):
    kept = drop_warmup(indicators, NAMES)
    assert len(kept) == len(indicators) - 3 * WARMUP
    assert kept[NAMES].notna().all().all()
    assert list(kept.index) == list(range(len(kept)))


def test_a_gap_inside_the_series_drops_only_the_affected_rows(small_prices):
    holed = small_prices.copy()
    holed.loc[holed.index[1500], C.CLOSE] = np.nan  # an AAPL bar with no close

    got = build_features(holed, PARAMS)

    expected = drop_warmup(add_targets(compute_indicators(holed, PARAMS), 0.001), NAMES)
    pd.testing.assert_frame_equal(got, expected)
    assert got[NAMES].notna().all().all()
    assert holed[C.DATE].iloc[1500] not in set(by_symbol(got, "AAPL")[C.DATE])


def test_an_undefined_last_bar_keeps_the_previous_bars_target(small_prices):
    holed = small_prices.copy()
    last_aapl = holed.index[holed[C.SYMBOL] == "AAPL"][-1]
    holed.loc[last_aapl, C.VOLUME] = np.nan  # OBV and the volume z-score undefined there

    got = build_features(holed, PARAMS)

    expected = drop_warmup(add_targets(compute_indicators(holed, PARAMS), 0.001), NAMES)
    pd.testing.assert_frame_equal(got, expected)
    aapl = by_symbol(got, "AAPL")
    assert aapl[C.DATE].iloc[-1] < holed.loc[last_aapl, C.DATE]
    assert aapl[C.TARGET_CLOSE].iloc[-1] == holed.loc[last_aapl, C.CLOSE]


def test_too_few_bars_for_the_warmup_is_an_error(small_prices):
    short = small_prices.groupby(C.SYMBOL).head(WARMUP)
    with pytest.raises(ValueError, match="no rows left after the indicator warm-up"):
        build_features(short, PARAMS)


# --------------------------------------------------------------------------------- targets
def test_targets_are_the_next_sessions_close_return_and_direction(small_prices, features):
    for symbol in small_prices[C.SYMBOL].unique():
        bars = by_symbol(small_prices, symbol).set_index(C.DATE)[C.CLOSE]
        got = by_symbol(features, symbol).iloc[:-1]
        next_dates = bars.index[bars.index.get_indexer(got[C.DATE]) + 1]
        assert (got[C.TARGET_DATE].to_numpy() == next_dates.to_numpy()).all()
        np.testing.assert_array_equal(got[C.TARGET_CLOSE], bars[next_dates].to_numpy())
        np.testing.assert_allclose(
            got[C.TARGET_RETURN], bars[next_dates].to_numpy() / got[C.CLOSE] - 1, rtol=1e-15
        )


def test_target_spans_a_holiday_to_the_next_session(features):
    aapl = by_symbol(features, "AAPL").set_index(C.DATE)
    assert aapl.loc["2019-07-03", C.TARGET_DATE] == pd.Timestamp("2019-07-05")
    assert aapl.loc["2019-07-03", C.TARGET_CLOSE] == aapl.loc["2019-07-05", C.CLOSE]


def test_last_row_has_no_target_but_the_next_session_as_target_date(features):
    last = features.groupby(C.SYMBOL).tail(1)
    assert last[C.TARGETS].isna().all().all()
    assert (last[C.TARGET_DATE] == pd.Timestamp("2024-01-02")).all()  # 2023-12-29 + New Year


def test_a_missing_session_leaves_no_target_rather_than_a_later_one(small_prices):
    gap_day = pd.Timestamp("2019-06-12")
    holed = small_prices[~((small_prices[C.SYMBOL] == "AAPL") & (small_prices[C.DATE] == gap_day))]

    got = build_features(holed, PARAMS).set_index([C.SYMBOL, C.DATE])

    before = got.loc[("AAPL", pd.Timestamp("2019-06-11"))]
    assert before[C.TARGET_DATE] == gap_day
    assert pd.isna(before[C.TARGET_CLOSE]) and pd.isna(before[C.TARGET_DIRECTION])
    assert pd.notna(got.loc[("AAPL", pd.Timestamp("2019-06-10")), C.TARGET_CLOSE])
    assert pd.notna(got.loc[("MSFT", pd.Timestamp("2019-06-11")), C.TARGET_CLOSE])


def test_output_does_not_depend_on_input_row_order(small_prices, features):
    shuffled = small_prices.sample(frac=1.0, random_state=7)
    before = shuffled.copy()

    pd.testing.assert_frame_equal(build_features(shuffled, PARAMS), features)
    pd.testing.assert_frame_equal(shuffled, before)  # the input is not modified


@pytest.mark.parametrize("copied", ["one row", "every row"])
def test_symbols_held_as_separate_string_objects_give_the_same_features(
    small_prices, features, copied
):
    # Parquet hands over one string object per symbol; other sources may not. A copied
    # object in the middle of a symbol must not start a new symbol.
    symbols = small_prices[C.SYMBOL].to_numpy().copy()
    positions = [1200] if copied == "one row" else range(len(symbols))
    for i in positions:
        symbols[i] = "".join(list(symbols[i]))  # equal text, another object
    assert symbols[1200] is not small_prices[C.SYMBOL].iloc[1200]

    got = build_features(small_prices.assign(**{C.SYMBOL: symbols}), PARAMS)

    pd.testing.assert_frame_equal(got, features)


def test_add_targets_does_not_depend_on_row_order(indicators):
    sorted_result = add_targets(indicators, 0.001)
    shuffled_result = add_targets(indicators.sample(frac=1.0, random_state=3), 0.001)
    pd.testing.assert_frame_equal(shuffled_result.reset_index(drop=True), sorted_result)


@pytest.mark.parametrize("band", [0.0, 0.001, 0.02])
def test_direction_band_parameter(small_prices, band):
    got = build_features(
        small_prices, FeatureEngineeringParams.parse({"targets": {"direction_band": band}})
    )

    ret = got[C.TARGET_RETURN]
    direction = got[C.TARGET_DIRECTION]
    pd.testing.assert_series_equal(direction, targets.direction(ret, band), check_names=False)
    assert (direction[ret > band] == C.UP).all()
    assert (direction[ret < -band] == C.DOWN).all()
    assert (direction[ret.abs() <= band] == C.FLAT).all()
    assert direction[ret.isna()].isna().all()
    if band == 0.02:
        assert (direction == C.FLAT).mean() > 0.5


# ------------------------------------------------------------------------- build_features
def test_build_features_equals_the_three_steps_composed(small_prices, features):
    composed = drop_warmup(add_targets(compute_indicators(small_prices, PARAMS), 0.001), NAMES)
    pd.testing.assert_frame_equal(features, composed)
    assert list(features.columns) == C.PRICE_COLUMNS + NAMES + [C.TARGET_DATE, *C.TARGETS]


def test_a_window_change_in_parameters_changes_the_column(small_prices):
    got = build_features(
        small_prices, FeatureEngineeringParams.parse({"indicators": {"volatility_window": 10}})
    )

    assert "volatility_10" in got.columns and "volatility_20" not in got.columns
    aapl = by_symbol(small_prices, "AAPL")
    close = aapl[C.CLOSE].to_numpy()
    expected = talib.STDDEV(np.r_[np.nan, np.log(close[1:] / close[:-1])], 10, 1.0)
    first = by_symbol(got, "AAPL")[C.DATE].iloc[0]
    offset = int(np.flatnonzero(aapl[C.DATE] == first)[0])
    np.testing.assert_array_equal(by_symbol(got, "AAPL")["volatility_10"], expected[offset:])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"indicators": {"macd": {"fast": 30}}}, "must be below macd.slow"),
        ({"indicators": {"rsi": 14}}, "feature_engineering.indicators.rsi"),
        ({"targets": {"direction_band": -0.1}}, "direction_band"),
    ],
)
def test_feature_parameters_reject_bad_values(params, message):
    with pytest.raises(ParameterError, match=message):
        FeatureEngineeringParams.parse(params, "feature_engineering")


def test_next_sessions_of_features_agree_with_the_calendar(features):
    sample = features.drop_duplicates(C.DATE).sample(50, random_state=1)
    for date, target_date in zip(sample[C.DATE], sample[C.TARGET_DATE], strict=True):
        assert target_date == calendar.next_session(date)
