"""Helpers shared by the tests (import with ``from helpers import ...``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from stock_mlops.core import columns as C
from stock_mlops.sources.base import ArchivedPrices, PriceRequest, RawPayload
from stock_mlops.sources.files import BundledSource

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT / "tests" / "fixtures"
SMALL_SYMBOLS = ("AAPL", "MSFT", "NVDA")
# The feature columns docs/CONTRACT.md promises (default windows).
CONTRACT_FEATURES = [
    "rsi_14",
    "ema_10",
    "sma_10",
    "dema_10",
    "macd_12_26_9",
    "macd_signal_12_26_9",
    "macd_hist_12_26_9",
    "bb_upper_20_2",
    "bb_middle_20_2",
    "bb_lower_20_2",
    "atr_14",
    "obv",
    "log_return_1d",
]


# Every indicator window changed from its default (and 1.5 standard deviations, which a column
# name writes as 1p5): a feature that ignores its parameters would go unnoticed with defaults.
OTHER_WINDOWS = {
    "indicators": {
        "rsi_window": 7,
        "ema_window": 21,
        "sma_window": 50,
        "dema_window": 5,
        "macd": {"fast": 5, "slow": 35, "signal": 5},
        "bollinger": {"window": 10, "num_std": 1.5},
        "atr_window": 5,
        "log_return_windows": [1, 10, 60],
        "volatility_window": 60,
        "volume_zscore_window": 5,
    }
}


def load_conf(name: str, env: str = "base") -> dict[str, Any]:
    """One YAML file of conf/<env> without Kedro's resolvers (tests that need them use Kedro)."""
    return yaml.safe_load((PROJECT / "conf" / env / name).read_text())


def raw_batch(symbols: tuple[str, ...] = SMALL_SYMBOLS) -> ArchivedPrices:
    """What the raw-price archive would load after fetching ``symbols`` from the snapshot."""
    source = BundledSource()
    return ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=tuple(symbols)),
        fetched_at="20240101T000000000000Z",
        payloads={s: [source.fetch(s)] for s in symbols},
        failures=[],
    )


def make_payload(
    symbol: str,
    content: bytes,
    *,
    fmt: str = "csv",
    kind: str = "file",
    origin: str | None = None,
    source: str = "csv",
) -> RawPayload:
    """A payload as a source delivers it and the archive loads it (origin ``<SYMBOL>.csv``)."""
    return RawPayload(
        symbol=symbol,
        source=source,
        format=fmt,
        content=content,
        fetched_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        kind=kind,
        origin=origin or f"{symbol}.csv",
    )


class KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so an intermediate output stays readable."""

    def _release(self) -> None:
        pass


def run_slice(
    pipeline: Pipeline,
    inputs: dict[str, Any],
    copy_mode: str | None = None,
    datasets: dict[str, Any] | None = None,
    keep: tuple[str, ...] = (),
) -> dict:
    """Runs a pipeline on an in-memory catalog holding ``inputs``; returns its final outputs
    and the intermediate ones named in ``keep``.

    ``datasets`` replaces the memory dataset of an output by a real one (a model store, say).
    Other intermediate outputs are released by Kedro's runner once consumed, as in a real run.
    Parameters are given as validated models, as Kedro hands them to nodes.
    """
    catalog = DataCatalog(
        {name: MemoryDataset(data, copy_mode=copy_mode) for name, data in inputs.items()}
    )
    for name in pipeline.all_outputs():
        kept = KeptDataset(copy_mode=copy_mode) if name in keep else None
        catalog[name] = (datasets or {}).get(name) or kept or MemoryDataset(copy_mode=copy_mode)
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.outputs() | set(keep)}


def run_kedro(
    pipeline: str,
    *,
    env: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Runs a registered pipeline of this project in-process, as ``kedro run`` would.

    Callers set ``MLFLOW_TRACKING_URI`` (and storage) to temporary locations first.
    """
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env, runtime_params=params or {}) as session:
        session.run(pipeline_names=[pipeline])


def evaluation_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Out-of-sample rows of a forecaster that is right up to +0.1% (validation 2022, test 2023)."""
    rows = features[features["target_close_1d"].notna() & (features["date"] > "2022-01-01")]
    split = np.where(rows["target_date"] <= pd.Timestamp("2022-12-31"), "validation", "test")
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "date": rows["target_date"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "model": "ludwig",
            "split": split,
            "fold": "holdout",
            "last_close": rows["close"].to_numpy(),
            # A forecaster that is right up to a small error.
            "prediction": rows["target_close_1d"].to_numpy() * 1.001,
            "actual": rows["target_close_1d"].to_numpy(),
            "predicted_direction": "up",
        }
    )


def prediction_log(features: pd.DataFrame, date: str) -> pd.DataFrame:
    """Team red's live prediction log for one day: +1% on every symbol."""
    rows = features[features["date"] == date]
    return pd.DataFrame(
        {
            "team": "red",
            "symbol": rows["symbol"],
            "feature_date": rows["date"],
            "target_date": rows["target_date"],
            "last_close": rows["close"],
            "prediction": rows["close"] * 1.01,
            "predicted_return": 0.01,
        }
    )


def talib_expected(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every default feature of ONE symbol, computed here directly with TA-Lib / NumPy."""
    o, h, lo, c, v = (bars[k].to_numpy(dtype=float) for k in (*C.OHLC, C.VOLUME))
    macd = talib.MACD(c, 12, 26, 9)
    bands = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    log_return = {lag: np.r_[[np.nan] * lag, np.log(c[lag:] / c[:-lag])] for lag in (1, 5, 20)}
    mean, std = talib.SMA(v, 20), talib.STDDEV(v, 20, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        volume_zscore = np.where(std > 0, (v - mean) / std, 0.0)  # a constant window: 0
    volume_zscore[np.isnan(std)] = np.nan
    dates = pd.DatetimeIndex(bars["date"])
    return {
        "rsi_14": talib.RSI(c, 14),
        "ema_10": talib.EMA(c, 10),
        "sma_10": talib.SMA(c, 10),
        "dema_10": talib.DEMA(c, 10),
        "macd_12_26_9": macd[0],
        "macd_signal_12_26_9": macd[1],
        "macd_hist_12_26_9": macd[2],
        "bb_upper_20_2": bands[0],
        "bb_middle_20_2": bands[1],
        "bb_lower_20_2": bands[2],
        "atr_14": talib.ATR(h, lo, c, 14),
        "obv": talib.OBV(c, v),
        "log_return_1d": log_return[1],
        "log_return_5d": log_return[5],
        "log_return_20d": log_return[20],
        "volatility_20": talib.STDDEV(log_return[1], 20, 1.0),
        "volume_zscore_20": volume_zscore,
        "close_minus_open": c - o,
        "day_of_week": dates.dayofweek.to_numpy(dtype=float),
        "day_of_month": dates.day.to_numpy(dtype=float),
        "month": dates.month.to_numpy(dtype=float),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def make_serve(args: list[str], port: int, env: dict[str, str], timeout: float) -> Iterator[str]:
    """`make -s serve PORT=<port> <args>` until it answers /ping; yields its URL, then stops it
    (its whole process group)."""
    with serve_process(args, port, env, timeout) as (url, _):
        yield url


@contextlib.contextmanager
def serve_process(
    args: list[str], port: int, env: dict[str, str], timeout: float, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """As :func:`make_serve`, yielding the URL and the `make` process (whose process tree is
    the server, for measuring its memory). Under load, pass ``log``: the server's output goes
    to that file instead of a pipe nobody reads, which would fill and stall the server."""
    import requests

    sink = log.open("wb") if log else subprocess.PIPE
    process = subprocess.Popen(
        ["make", "-s", "serve", f"PORT={port}", *args],
        cwd=PROJECT,
        env=env,
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = log.read_bytes() if log else process.stdout.read()
                raise AssertionError(f"make serve exited: {output.decode()[-3000:]}")
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            raise AssertionError("the server did not answer /ping in time")
        yield url, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        if log:
            sink.close()
