"""What the backtest pipeline's tests share: out-of-sample predictions of a known quality made
from real prices, and memory datasets that keep what a run wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
from kedro.io import MemoryDataset

from stock_mlops.core import calendar
from stock_mlops.core.params import TradingParams

TRADING = TradingParams.parse(
    {"local": {"initial_cash": 50_000.0, "fill_at": "next_open", "slippage_bps": 5.0}}
)


def evaluation_predictions(prices: pd.DataFrame, sign: float = 1.0) -> pd.DataFrame:
    """The ``ludwig`` holdout rows of a perfect (sign 1) or mirrored (sign -1) forecaster, plus
    rows of another model and fold that the backtest must ignore."""
    frame = prices.sort_values(["symbol", "date"])
    frame = frame.assign(actual=frame.groupby("symbol")["close"].shift(-1))
    frame = frame[(frame["date"] >= "2022-06-01") & (frame["date"] <= "2022-09-30")].dropna(
        subset=["actual"]
    )
    prediction = frame["close"] + sign * (frame["actual"] - frame["close"])
    target = calendar.next_sessions(frame["date"]).to_numpy()
    rows = pd.DataFrame(
        {
            "symbol": frame["symbol"].to_numpy(),
            "date": target,
            "feature_date": frame["date"].to_numpy(),
            "model": "ludwig",
            # training.split: validation up to 2022-06-30, test after.
            "split": np.where(target <= np.datetime64("2022-06-30"), "validation", "test"),
            "fold": "holdout",
            "last_close": frame["close"].to_numpy(),
            "prediction": prediction.to_numpy(),
            "actual": frame["actual"].to_numpy(),
            "predicted_direction": np.where(prediction > frame["close"], "up", "down"),
        }
    )
    decoy = rows.assign(model="naive", prediction=rows["last_close"] * 2)
    return pd.concat([rows, decoy], ignore_index=True)


class KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so intermediate outputs stay readable."""

    def _release(self) -> None:
        pass


class NothingStored(KeptDataset):
    """An earlier run's document that does not exist yet (as EarlierRunDataset loads it)."""

    def load(self) -> None:
        return None


class NoTableStored(KeptDataset):
    """An earlier run's table that does not exist yet (as EarlierRunDataset loads it)."""

    def load(self) -> pd.DataFrame:
        return pd.DataFrame()
