"""The real trading pipeline with ``trading.broker=alpaca``: alpaca-py's TradingClient, the real
broker datasets on disk and the loopback fake Alpaca, run twice for the same day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from fakes.alpaca_server import NEW_YORK, FakeAlpacaServer
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_mlops.core.params import TradingParams
from stock_mlops.core.strategy import APPROVED, REFUSED
from stock_mlops.datasets import BrokerAccountDataset, BrokerOrdersDataset
from stock_mlops.pipelines.trading import create_pipeline

DECISION = pd.Timestamp("2023-12-29")  # the last session in the bundled data (a Friday)
TARGET = pd.Timestamp("2024-01-02")  # the next session (Monday is New Year's Day)
TEAM = "red"
OUTPUTS = ("orders", "order_reconciliation")


@pytest.fixture
def fake(alpaca_keys):
    with FakeAlpacaServer(cash=100_000.0) as server:
        # Friday after the close: an order placed now executes in Tuesday's session.
        server.set_clock(
            dt.datetime(2023, 12, 29, 17, 30, tzinfo=NEW_YORK),
            is_open=False,
            next_open=dt.datetime(2024, 1, 2, 9, 30, tzinfo=NEW_YORK),
        )
        yield server


@pytest.fixture
def predictions(small_prices: pd.DataFrame) -> pd.DataFrame:
    """AAPL +3 % (a buy), MSFT and NVDA flat (inside the dead band): exactly one order."""
    closes = small_prices[small_prices["date"] == DECISION].set_index("symbol")["close"]
    returns = {"AAPL": 0.03, "MSFT": 0.0, "NVDA": 0.001}
    return pd.DataFrame(
        {
            "run_id": "inference-1",
            "model_version": "3",
            "team": TEAM,
            "symbol": list(returns),
            "feature_date": DECISION,
            "target_date": TARGET,
            "last_close": [closes[s] for s in returns],
            "prediction": [closes[s] * (1 + r) for s, r in returns.items()],
            "predicted_return": list(returns.values()),
            "predicted_direction": ["up", "flat", "flat"],
            "created_at": DECISION + pd.Timedelta(hours=22),
        }
    )


def _trading(fake: FakeAlpacaServer) -> TradingParams:
    return TradingParams.parse(
        {
            "broker": "alpaca",
            "threshold": 0.005,
            "sizing": "all_in",
            "alpaca": {"url_override": fake.url, "timeout_seconds": 2},
        }
    )


def _run(
    fake: FakeAlpacaServer,
    tmp_path: Path,
    prices: pd.DataFrame,
    predictions: pd.DataFrame,
    run_id: str,
) -> dict[str, pd.DataFrame]:
    broker = {"filepath": str(tmp_path / "broker")}
    inputs = {
        "prices": prices,
        "predictions": predictions,
        "params:trading": _trading(fake),
        "params:trading.broker": "alpaca",
        "params:run_date": DECISION.date().isoformat(),
        "params:team": TEAM,
        "run_info": {"run_id": run_id, "started_at": "2023-12-29T22:30:00+00:00"},
    }
    catalog = DataCatalog({name: MemoryDataset(data) for name, data in inputs.items()})
    catalog["broker_account"] = BrokerAccountDataset(**broker)
    catalog["broker_orders"] = BrokerOrdersDataset(**broker)
    for name in OUTPUTS:
        catalog[name] = MemoryDataset()
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in ("orders", "order_reconciliation")}


def test_alpaca_trading_places_one_order_and_is_idempotent(
    fake, tmp_path, small_prices, predictions
):
    aapl_close = float(
        small_prices.query("symbol == 'AAPL' and date == @DECISION")["close"].iloc[0]
    )
    fake.set_price("AAPL", aapl_close)

    first = _run(fake, tmp_path, small_prices, predictions, "trading-1")

    orders = first["orders"]
    approved = orders[orders["status"] == APPROVED]
    assert approved[["symbol", "side"]].values.tolist() == [["AAPL", "buy"]]
    assert not (orders["status"] == REFUSED).any(), orders["reason"].tolist()
    client_order_id = f"{TEAM}-20231229-AAPL-buy"
    qty = float(approved["qty"].iloc[0])
    assert qty == float(int(100_000 / aapl_close))
    (post,) = fake.requests_to("POST", "/v2/orders")
    assert post.body == {
        "symbol": "AAPL",
        "qty": qty,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": client_order_id,
    }
    (placed,) = fake.orders
    assert placed["client_order_id"] == client_order_id
    reconciliation = first["order_reconciliation"]
    assert reconciliation["client_order_id"].tolist() == [client_order_id]
    assert reconciliation["matches"].tolist() == [True]
    assert reconciliation["status"].tolist() == ["accepted"]
    assert reconciliation["broker_order_id"].tolist() == [placed["id"]]

    second = _run(fake, tmp_path, small_prices, predictions, "trading-2")

    assert len(fake.requests_to("POST", "/v2/orders")) == 1, "nothing new was submitted"
    assert len(fake.orders) == 1
    # The re-decision is "already submitted": its first decision is logged, so it adds no row.
    assert client_order_id not in set(second["orders"]["client_order_id"])
    assert not (second["orders"]["status"] == APPROVED).any()
    # The re-run submits nothing but looks the known order up, so it is reconciled again.
    rerun = second["order_reconciliation"].set_index("client_order_id")
    assert list(rerun.index) == [client_order_id]
    assert rerun.loc[client_order_id, "matches"]
    reports = BrokerOrdersDataset(filepath=str(tmp_path / "broker")).load()
    assert reports["client_order_id"].tolist() == [client_order_id]


def test_a_clock_for_another_session_refuses_every_order(fake, tmp_path, small_prices, predictions):
    # Tuesday morning already: the predictions made for Tuesday would execute on Wednesday.
    fake.set_clock(
        dt.datetime(2024, 1, 2, 17, 0, tzinfo=NEW_YORK),
        is_open=False,
        next_open=dt.datetime(2024, 1, 3, 9, 30, tzinfo=NEW_YORK),
    )

    result = _run(fake, tmp_path, small_prices, predictions, "trading-1")

    aapl = result["orders"].set_index("symbol").loc["AAPL"]
    assert aapl["status"] == REFUSED
    assert "2024-01-03" in aapl["reason"]
    assert fake.requests_to("POST", "/v2/orders") == []
