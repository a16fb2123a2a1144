"""A large, realistic price panel for benchmarks, built by resampling real daily bars.

Method (seeded, so every run builds the same panel):

1. From the bundled snapshot (seven real symbols, 2013-2023, split-adjusted Yahoo bars) take every
   bar after the first and describe it scale-free: the close-to-close return, and open, high and
   low as fractions of that bar's close, plus the volume.
2. For each synthetic symbol draw bars from that pool with replacement (an i.i.d. bootstrap of
   real days) for every NYSE session of the period, start from a random price, compound the
   drawn returns into closes, and rebuild open/high/low from the drawn fractions.

Each synthetic bar is therefore a real bar, rescaled: OHLC stays consistent (high is the highest
of the four, low the lowest), moves have the real fat tails, and no day moves by a split-like
factor (the snapshot has none), so validation keeps every symbol.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C

DEFAULT_SEED = 20_240_101


def _real_bar_pool() -> dict[str, np.ndarray]:
    """Scale-free descriptions of every real bar of the bundled snapshot (all symbols pooled).

    Returns:
        Arrays ``ret, open_frac, high_frac, low_frac, volume`` of equal length.
    """
    folder = resources.files("stock_mlops") / "snapshot" / "mag7"
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("ret", "open_frac", "high_frac", "low_frac", "volume")
    }
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".csv"):
            continue
        bars = pd.read_csv(io.BytesIO(entry.read_bytes()))
        close = bars["Close"].to_numpy(dtype=float)
        parts["ret"].append(close[1:] / close[:-1])
        parts["open_frac"].append(bars["Open"].to_numpy(dtype=float)[1:] / close[1:])
        parts["high_frac"].append(bars["High"].to_numpy(dtype=float)[1:] / close[1:])
        parts["low_frac"].append(bars["Low"].to_numpy(dtype=float)[1:] / close[1:])
        parts["volume"].append(bars["Volume"].to_numpy(dtype=float)[1:])
    return {k: np.concatenate(v) for k, v in parts.items()}


def synthetic_prices(
    n_symbols: int = 500,
    years: int = 20,
    seed: int = DEFAULT_SEED,
    end: str = "2023-12-29",
) -> pd.DataFrame:
    """A ``prices``-shaped panel of ``n_symbols`` symbols over ``years`` years of NYSE sessions.

    Args:
        n_symbols: How many synthetic symbols (named ``S0000``, ``S0001``, ...).
        years: Length of every symbol's history in calendar years, ending at ``end``.
        seed: Seed of the random generator (same seed, same panel).
        end: Last session of the panel.

    Returns:
        Long bars ``symbol, date, open, high, low, close, volume`` sorted by symbol and date.
    """
    rng = np.random.default_rng(seed)
    pool = _real_bar_pool()
    end_ts = pd.Timestamp(end)
    sessions = calendar.sessions_between(end_ts - pd.DateOffset(years=years), end_ts)
    n = len(sessions)

    draws = rng.integers(0, len(pool["ret"]), size=(n_symbols, n))
    start_price = rng.uniform(10.0, 300.0, size=(n_symbols, 1))
    close = start_price * np.cumprod(pool["ret"][draws], axis=1)
    # Spread volumes over two orders of magnitude so symbols do not all look like mega caps.
    volume_scale = 10.0 ** rng.uniform(-2.0, 0.0, size=(n_symbols, 1))
    volume = np.maximum(np.round(pool["volume"][draws] * volume_scale), 1.0)

    return pd.DataFrame(
        {
            C.SYMBOL: np.repeat([f"S{i:04d}" for i in range(n_symbols)], n),
            C.DATE: np.tile(sessions.to_numpy(), n_symbols),
            C.OPEN: (close * pool["open_frac"][draws]).ravel(),
            C.HIGH: (close * pool["high_frac"][draws]).ravel(),
            C.LOW: (close * pool["low_frac"][draws]).ravel(),
            C.CLOSE: close.ravel(),
            C.VOLUME: volume.ravel(),
        }
    )


def as_raw_batch(prices: pd.DataFrame) -> dict:
    """The panel as the raw-price archive would load it: one Yahoo-style CSV payload per symbol.

    Args:
        prices: Output of :func:`synthetic_prices`.

    Returns:
        What ``clean_prices`` takes as ``raw_prices``.
    """
    from stock_mlops.sources.base import ArchivedPrices, PriceRequest, RawPayload

    fetched_at = pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime()
    payloads = {}
    for symbol, bars in prices.groupby(C.SYMBOL, sort=True):
        table = bars.drop(columns=C.SYMBOL).rename(columns=str.capitalize)
        table["Date"] = table["Date"].dt.strftime("%Y-%m-%d")
        content = table.to_csv(index=False, float_format="%.6f").encode()
        payloads[symbol] = [
            RawPayload(
                symbol=symbol,
                source="csv",
                format="csv",
                content=content,
                fetched_at=fetched_at,
                kind="file",
                origin=f"{symbol}.csv",
            )
        ]
    return ArchivedPrices(
        request=PriceRequest(source="csv", symbols=tuple(sorted(payloads))),
        fetched_at="20240102T000000000000Z",
        payloads=payloads,
        failures=[],
    )
