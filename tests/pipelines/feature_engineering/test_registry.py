"""The feature registry: names carry their parameters, and every indicator follows TA-Lib's
conventions (checked against TA-Lib itself, a known answer and the textbook definitions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from helpers import CONTRACT_FEATURES, FIXTURES, OTHER_WINDOWS, talib_expected

from stock_mlops.core import columns as C
from stock_mlops.core.params import IndicatorParams
from stock_mlops.pipelines.data_ingestion.parsers import parse_payload
from stock_mlops.pipelines.feature_engineering.registry import (
    Bars,
    feature_names,
    feature_specs,
)
from stock_mlops.sources.files import BundledSource

DEFAULT = IndicatorParams()


def bars_of(frame: pd.DataFrame) -> Bars:
    """Parsed bars as the registry's float arrays."""
    return Bars(
        open=frame["open"].to_numpy(dtype=float),
        high=frame["high"].to_numpy(dtype=float),
        low=frame["low"].to_numpy(dtype=float),
        close=frame["close"].to_numpy(dtype=float),
        volume=frame["volume"].to_numpy(dtype=float),
        dates=frame["date"].to_numpy(dtype="datetime64[ns]"),
    )


@pytest.fixture(scope="module")
def aapl() -> Bars:
    """Real split-adjusted AAPL bars 2013-2023 (bundled snapshot)."""
    return bars_of(parse_payload(BundledSource().fetch("AAPL")))


def computed(bars: Bars, p: IndicatorParams = DEFAULT, calendar: bool = True) -> dict:
    """Every registry feature of one symbol, by name."""
    out = {}
    for group in feature_specs(p, calendar):
        for name, values in zip(group.names, group.compute(bars), strict=True):
            out[name] = values
    return out


# ------------------------------------------------------------------------------------ names
def test_default_names_include_the_contract_columns_once():
    names = feature_names(DEFAULT)

    assert names[: len(CONTRACT_FEATURES)] == CONTRACT_FEATURES
    assert len(set(names)) == len(names)
    assert not set(names) & set(C.TARGETS + [C.TARGET_DATE] + C.PRICE_COLUMNS)


def test_names_carry_the_windows_from_parameters():
    p = IndicatorParams.parse(OTHER_WINDOWS["indicators"])
    names = feature_names(p)

    for expected in (
        "rsi_7",
        "ema_21",
        "sma_50",
        "dema_5",
        "macd_5_35_5",
        "macd_signal_5_35_5",
        "macd_hist_5_35_5",
        "bb_upper_10_1p5",
        "bb_lower_10_1p5",
        "atr_5",
        "log_return_1d",
        "log_return_10d",
        "log_return_60d",
        "volatility_60",
        "volume_zscore_5",
    ):
        assert expected in names
    assert not {"rsi_14", "volatility_20", "volume_zscore_20", "log_return_5d"} & set(names)


def test_calendar_features_can_be_switched_off():
    assert {"day_of_week", "day_of_month", "month"} <= set(feature_names(DEFAULT))
    assert not {"day_of_week", "day_of_month", "month"} & set(feature_names(DEFAULT, False))


# ------------------------------------------------------------------------- against TA-Lib
def test_every_indicator_equals_talib_called_directly(aapl):
    frame = pd.DataFrame(
        {
            "open": aapl.open,
            "high": aapl.high,
            "low": aapl.low,
            "close": aapl.close,
            "volume": aapl.volume,
            "date": aapl.dates,
        }
    )
    features = computed(aapl)
    expected = talib_expected(frame)
    assert set(expected) == set(features)
    for name, values in expected.items():
        np.testing.assert_array_equal(features[name], values, err_msg=name)


def test_known_answer_rsi_matches_stockcharts_to_two_decimals():
    example = pd.read_csv(FIXTURES / "known_answer" / "stockcharts_rsi_example.csv")
    close = example["Close"].to_numpy(dtype=float)
    [rsi] = next(g for g in feature_specs(DEFAULT) if g.names == ("rsi_14",)).compute(
        Bars(close, close, close, close, np.ones_like(close), np.zeros(len(close), "M8[ns]"))
    )

    known = example["RSI14_talib"].to_numpy()
    assert np.isnan(rsi[:14]).all() and np.isnan(known[:14]).all()
    np.testing.assert_array_equal(np.round(rsi[14:], 2), known[14:])
    assert rsi[14] == pytest.approx(70.53, abs=0.005)  # StockCharts' first value


# ------------------------------------------------------------------------------ conventions
def test_ema_is_seeded_with_the_sma_of_the_first_window(aapl):
    ema = computed(aapl)["ema_10"]
    c = aapl.close
    alpha = 2 / 11

    assert np.isnan(ema[:9]).all()
    assert ema[9] == pytest.approx(c[:10].mean(), rel=1e-12)  # not c[0]
    assert ema[10] == pytest.approx(alpha * c[10] + (1 - alpha) * ema[9], rel=1e-12)
    reference = pd.Series(c).ewm(alpha=alpha, adjust=False).mean().to_numpy()  # seeded with c[0]
    assert abs(ema[9] - reference[9]) > 1e-3


def test_dema_is_two_ema_minus_ema_of_ema(aapl):
    dema = computed(aapl)["dema_10"]
    ema = talib.EMA(aapl.close, 10)
    ema_of_ema = np.full_like(ema, np.nan)
    ema_of_ema[9:] = talib.EMA(ema[9:], 10)
    np.testing.assert_allclose(dema[18:], (2 * ema - ema_of_ema)[18:], rtol=1e-12)


def test_bollinger_bands_use_the_population_standard_deviation(aapl):
    f = computed(aapl)
    close = pd.Series(aapl.close)
    population = close.rolling(20).std(ddof=0).to_numpy()
    sample = close.rolling(20).std(ddof=1).to_numpy()

    np.testing.assert_allclose(f["bb_middle_20_2"][19:], close.rolling(20).mean()[19:], rtol=1e-9)
    np.testing.assert_allclose(
        (f["bb_upper_20_2"] - f["bb_middle_20_2"])[19:], 2 * population[19:], rtol=1e-6
    )
    np.testing.assert_allclose(
        (f["bb_middle_20_2"] - f["bb_lower_20_2"])[19:], 2 * population[19:], rtol=1e-6
    )
    assert not np.allclose((f["bb_upper_20_2"] - f["bb_middle_20_2"])[19:], 2 * sample[19:])


def test_obv_adds_on_up_closes_subtracts_on_down_closes_and_holds_on_equal(aapl):
    obv = computed(aapl)["obv"]
    change = np.sign(np.diff(aapl.close))
    assert (change == 0).sum() == 6  # the real series has six unchanged closes

    expected = aapl.volume[0] + np.r_[0.0, np.cumsum(change * aapl.volume[1:])]
    np.testing.assert_array_equal(obv, expected)
    flat = np.flatnonzero(change == 0) + 1
    np.testing.assert_array_equal(obv[flat], obv[flat - 1])


def test_atr_is_wilder_smoothing_of_the_true_range(aapl):
    atr = computed(aapl)["atr_14"]
    h, lo, c = aapl.high, aapl.low, aapl.close
    true_range = np.maximum(h[1:], c[:-1]) - np.minimum(lo[1:], c[:-1])

    assert np.isnan(atr[:14]).all()
    assert atr[14] == pytest.approx(true_range[:14].mean(), rel=1e-12)
    assert atr[15] == pytest.approx((13 * atr[14] + true_range[14]) / 14, rel=1e-12)


@pytest.mark.parametrize("lag", [1, 5, 20])
def test_log_returns(aapl, lag):
    values = computed(aapl)[f"log_return_{lag}d"]
    assert np.isnan(values[:lag]).all()
    np.testing.assert_allclose(values[lag:], np.log(aapl.close[lag:] / aapl.close[:-lag]))


@pytest.mark.parametrize("window", [10, 20, 60])
def test_volatility_and_volume_zscore_windows_come_from_parameters(aapl, window):
    p = IndicatorParams(volatility_window=window, volume_zscore_window=window)
    f = computed(aapl, p)
    log_return = pd.Series(np.r_[np.nan, np.log(aapl.close[1:] / aapl.close[:-1])])
    volume = pd.Series(aapl.volume)
    rolling = volume.rolling(window)
    zscore = ((volume - rolling.mean()) / rolling.std(ddof=0)).to_numpy()

    volatility = f[f"volatility_{window}"]
    assert np.isnan(volatility[:window]).all()
    np.testing.assert_allclose(
        volatility[window:], log_return.rolling(window).std(ddof=0)[window:], rtol=1e-6
    )
    z = f[f"volume_zscore_{window}"]
    assert np.isnan(z[: window - 1]).all()
    np.testing.assert_allclose(z[window - 1 :], zscore[window - 1 :], rtol=1e-6, atol=1e-9)


def test_zscore_of_a_constant_window_is_zero_not_a_division_by_zero(aapl):
    volume = aapl.volume.copy()
    volume[100:130] = volume[100]  # a month of identical volumes
    z = computed(Bars(aapl.open, aapl.high, aapl.low, aapl.close, volume, aapl.dates))

    assert (z["volume_zscore_20"][119:130] == 0).all()
    assert np.isfinite(z["volume_zscore_20"][19:]).all()


def test_calendar_features_match_pandas_inside_and_outside_the_lookup_table():
    for start, end in (("2013-01-02", "2023-12-29"), ("1850-01-01", "1850-03-31")):
        dates = pd.date_range(start, end, freq="D")
        ones = np.ones(len(dates))
        f = computed(Bars(ones, ones, ones, ones, ones, dates.to_numpy()))
        np.testing.assert_array_equal(f["day_of_week"], dates.dayofweek)
        np.testing.assert_array_equal(f["day_of_month"], dates.day)
        np.testing.assert_array_equal(f["month"], dates.month)


def test_close_minus_open(aapl):
    np.testing.assert_array_equal(computed(aapl)["close_minus_open"], aapl.close - aapl.open)


# ------------------------------------------------------------------------------------ kinds
def test_every_feature_declares_what_it_measures():
    from stock_mlops.core.vocabulary import FEATURE_KINDS
    from stock_mlops.pipelines.feature_engineering.registry import feature_kinds

    for params in (DEFAULT, IndicatorParams.model_validate(OTHER_WINDOWS["indicators"])):
        kinds = feature_kinds(params)
        assert list(kinds) == feature_names(params)
        assert set(kinds.values()) <= set(FEATURE_KINDS)
    kinds = feature_kinds(DEFAULT)
    scale_free = {"return", "oscillator", "zscore", "volatility"}
    assert sorted(c for c, k in kinds.items() if k in scale_free) == sorted(
        [
            "rsi_14",
            "log_return_1d",
            "log_return_5d",
            "log_return_20d",
            "volatility_20",
            "volume_zscore_20",
        ]
    )
    # Columns in price units, cumulative volume and the calendar are not scale-free.
    assert {kinds[c] for c in ("sma_10", "bb_lower_20_2", "macd_12_26_9", "atr_14", "obv")} == {
        "price_level",
        "price_difference",
        "price_range",
        "volume_level",
    }
    assert kinds["month"] == "calendar"
    assert "month" not in feature_kinds(DEFAULT, calendar_features=False)
