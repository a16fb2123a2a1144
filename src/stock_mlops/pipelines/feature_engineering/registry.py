"""The feature registry: every feature the project computes, named after its parameters.

Indicators follow TA-Lib's conventions because TA-Lib is the engine (EMA seeded with an SMA,
Wilder smoothing for RSI and ATR, population standard deviation for Bollinger bands, MACD's fast
EMA seeded on the slow one's first bar). Every feature uses only bars up to its own row: the
leakage firewall test iterates over :func:`feature_specs`, so a feature added here is covered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import talib

from stock_mlops.core.params import IndicatorParams
from stock_mlops.core.vocabulary import NS_PER_DAY, FeatureKind


@dataclass(frozen=True)
class Bars:
    """One symbol's adjusted bars as float64 arrays, oldest first."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dates: np.ndarray  # datetime64[ns]

    @functools.cached_property
    def log_return_1d(self) -> np.ndarray:
        """One-day log returns, shared by the return and volatility features."""
        return _log_return(self.close, 1)


@dataclass(frozen=True)
class FeatureGroup:
    """Features computed together (MACD's three lines share one TA-Lib call), and what they
    measure (monitoring picks the features it tests for drift by kind)."""

    names: tuple[str, ...]
    compute: Callable[[Bars], tuple[np.ndarray, ...]]
    kind: FeatureKind


def _num(value: float) -> str:
    """Formats a parameter for a column name: 2.0 -> "2", 2.5 -> "2p5"."""
    return f"{value:g}".replace(".", "p")


def _log_return(close: np.ndarray, lag: int) -> np.ndarray:
    out = np.full_like(close, np.nan)
    out[lag:] = np.log(close[lag:] / close[:-lag])
    return out


def _zscore(values: np.ndarray, window: int) -> np.ndarray:
    mean = talib.SMA(values, window)
    std = talib.STDDEV(values, window, 1.0)
    # A constant window has value == mean: its z-score is 0, not a division by zero.
    z = np.divide(values - mean, std, out=np.zeros_like(values), where=std > 0)
    z[np.isnan(std)] = np.nan
    return z


def feature_specs(p: IndicatorParams, calendar_features: bool = True) -> list[FeatureGroup]:
    """The feature groups for the given parameters, in output column order."""
    macd = f"{p.macd.fast}_{p.macd.slow}_{p.macd.signal}"
    bb = f"{p.bollinger.window}_{_num(p.bollinger.num_std)}"
    groups = [
        FeatureGroup(
            (f"rsi_{p.rsi_window}",), lambda b: (talib.RSI(b.close, p.rsi_window),), "oscillator"
        ),
        FeatureGroup(
            (f"ema_{p.ema_window}",), lambda b: (talib.EMA(b.close, p.ema_window),), "price_level"
        ),
        FeatureGroup(
            (f"sma_{p.sma_window}",), lambda b: (talib.SMA(b.close, p.sma_window),), "price_level"
        ),
        FeatureGroup(
            (f"dema_{p.dema_window}",),
            lambda b: (talib.DEMA(b.close, p.dema_window),),
            "price_level",
        ),
        # MACD is a difference of two EMAs: in price units, it grows with the price.
        FeatureGroup(
            (f"macd_{macd}", f"macd_signal_{macd}", f"macd_hist_{macd}"),
            lambda b: talib.MACD(b.close, p.macd.fast, p.macd.slow, p.macd.signal),
            "price_difference",
        ),
        FeatureGroup(
            (f"bb_upper_{bb}", f"bb_middle_{bb}", f"bb_lower_{bb}"),
            lambda b: talib.BBANDS(
                b.close, p.bollinger.window, p.bollinger.num_std, p.bollinger.num_std, 0
            ),
            "price_level",
        ),
        FeatureGroup(
            (f"atr_{p.atr_window}",),
            lambda b: (talib.ATR(b.high, b.low, b.close, p.atr_window),),
            "price_range",
        ),
        FeatureGroup(("obv",), lambda b: (talib.OBV(b.close, b.volume),), "volume_level"),
    ]
    for lag in p.log_return_windows:
        groups.append(
            FeatureGroup(
                (f"log_return_{lag}d",),
                lambda b, lag=lag: (b.log_return_1d if lag == 1 else _log_return(b.close, lag),),
                "return",
            )
        )
    groups += [
        FeatureGroup(
            (f"volatility_{p.volatility_window}",),
            lambda b: (talib.STDDEV(b.log_return_1d, p.volatility_window, 1.0),),
            "volatility",
        ),
        FeatureGroup(
            (f"volume_zscore_{p.volume_zscore_window}",),
            lambda b: (_zscore(b.volume, p.volume_zscore_window),),
            "zscore",
        ),
        FeatureGroup(("close_minus_open",), lambda b: (b.close - b.open,), "price_difference"),
    ]
    if calendar_features:
        groups.append(FeatureGroup(("day_of_week", "day_of_month", "month"), _calendar, "calendar"))
    return groups


def _calendar(b: Bars) -> tuple[np.ndarray, ...]:
    """Day of week (Monday = 0), day of month and month of each bar, as floats."""
    days = b.dates.astype("datetime64[ns]", copy=False).view(np.int64) // NS_PER_DAY
    first_day, weekday, day_of_month, month = _day_table()
    position = days - first_day
    if len(days) and (position.min() < 0 or position.max() >= len(month)):
        as_days = days.astype("datetime64[D]")
        months = as_days.astype("datetime64[M]")
        return (
            ((days + 3) % 7).astype(float),  # 1970-01-01 was a Thursday
            (as_days - months).astype(np.int64) + 1.0,
            months.astype(np.int64) % 12 + 1.0,
        )
    return weekday[position], day_of_month[position], month[position]


@functools.cache
def _day_table() -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Day of week, day of month and month of every day 1900-2199, built once: a lookup is
    several times faster per symbol than date arithmetic on each symbol's dates."""
    days = np.arange(np.datetime64("1900-01-01"), np.datetime64("2200-01-01"))
    ordinals = days.astype(np.int64)
    weekday = ((ordinals + 3) % 7).astype(float)  # 1970-01-01 was a Thursday
    months = days.astype("datetime64[M]")
    day_of_month = (days - months).astype(np.int64) + 1.0
    month = months.astype(np.int64) % 12 + 1.0
    for table in (weekday, day_of_month, month):
        table.flags.writeable = False  # shared by every call
    return int(ordinals[0]), weekday, day_of_month, month


def feature_names(p: IndicatorParams, calendar_features: bool = True) -> list[str]:
    """Every feature column the registry produces for these parameters."""
    return [name for group in feature_specs(p, calendar_features) for name in group.names]


def feature_kinds(p: IndicatorParams, calendar_features: bool = True) -> dict[str, str]:
    """Every feature column the registry produces, with the kind of quantity it measures."""
    return {
        name: group.kind for group in feature_specs(p, calendar_features) for name in group.names
    }
