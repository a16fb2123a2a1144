"""The broker datasets on the local broker: snapshots, idempotent submission, atomic state."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core.broker_types import BrokerError, BrokerRequest, OrderRequest, OrderSubmission
from stock_mlops.core.params import AlpacaBrokerParams, LocalBrokerParams
from stock_mlops.datasets import BrokerAccountDataset, BrokerOrdersDataset


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def request_for(small_prices: pd.DataFrame) -> Callable[..., BrokerRequest]:
    """Builds a broker request carrying the real bars up to its date, as the trading node does."""

    def build(
        as_of: str, fill_at: str = "close", broker: str = "local", bars: pd.DataFrame | None = None
    ) -> BrokerRequest:
        bars = small_prices if bars is None else bars
        return BrokerRequest(
            broker=broker,
            live=False,
            as_of=dt.date.fromisoformat(as_of),
            local=LocalBrokerParams(
                initial_cash=100_000.0,
                fill_at=fill_at,
                allow_close_fill=fill_at == "close",
                commission_bps=1.0,
                slippage_bps=5.0,
            ),
            alpaca=AlpacaBrokerParams(),
            market_bars=bars[bars["date"] <= pd.Timestamp(as_of)],
        )

    return build


@pytest.fixture
def submission(request_for) -> Callable[..., OrderSubmission]:
    def build(as_of: str, fill_at: str = "close", **qty: float) -> OrderSubmission:
        day = dt.date.fromisoformat(as_of)
        return OrderSubmission(
            request=request_for(as_of, fill_at),
            orders=tuple(
                OrderRequest(
                    client_order_id=f"red-{day:%Y%m%d}-{symbol}-buy",
                    symbol=symbol,
                    side="buy",
                    qty=q,
                    reference_price=100.0,
                    decision_date=day,
                    target_date=day,
                )
                for symbol, q in qty.items()
            ),
        )

    return build


def state_file(root: Path) -> Path:
    return root / "local_account.json"


def test_snapshot_of_a_new_local_account(root: Path, request_for, submission):
    dataset = BrokerAccountDataset(filepath=str(root))
    dataset.save(request_for("2023-06-01", fill_at="next_open"))
    snapshot = dataset.load()
    assert snapshot.broker == "local"
    assert snapshot.cash == 100_000.0 and snapshot.positions == {}
    assert snapshot.clock.execution_session == dt.date(2023, 6, 2)
    assert json.loads(state_file(root).read_text())["as_of"] == "2023-06-01"


def test_loading_before_any_snapshot_fails(root: Path, request_for, submission):
    with pytest.raises(DatasetError, match="no snapshots stored"):
        BrokerAccountDataset(filepath=str(root)).load()


def test_an_unknown_broker_is_an_error(root: Path, request_for, submission):
    with pytest.raises(DatasetError, match="unknown broker 'ibkr'"):
        BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-01", broker="ibkr"))


def test_the_local_broker_needs_market_bars(root: Path, request_for, small_prices):
    no_bars = request_for("2023-06-01", bars=small_prices.iloc[0:0])
    with pytest.raises(DatasetError, match="no market bars up to 2023-06-01"):
        BrokerAccountDataset(filepath=str(root)).save(no_bars)
    assert not state_file(root).exists()


def test_an_as_of_date_before_the_market_data_is_an_error(root: Path, request_for):
    with pytest.raises(DatasetError, match="no market bars"):
        BrokerAccountDataset(filepath=str(root)).save(request_for("2000-01-03"))
    assert not state_file(root).exists()


def test_a_failing_account_read_stores_nothing(root: Path, request_for, submission, monkeypatch):
    def refuse(self):
        raise BrokerError("GET /account timed out")

    monkeypatch.setattr(LocalPaperBroker, "account", refuse)
    dataset = BrokerAccountDataset(filepath=str(root))
    with pytest.raises(DatasetError, match="reading the local account failed: GET /account"):
        dataset.save(request_for("2023-06-01"))
    assert not state_file(root).exists()


def test_orders_are_submitted_and_their_reports_loaded(root: Path, request_for, submission):
    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission("2023-06-01", AAPL=10.0, MSFT=5.0))
    reports = orders.load()
    assert list(reports["symbol"]) == ["AAPL", "MSFT"]
    assert set(reports["status"]) == {"filled"}
    state = json.loads(state_file(root).read_text())
    assert {s: p["qty"] for s, p in state["positions"].items()} == {"AAPL": 10.0, "MSFT": 5.0}


def test_resubmitting_the_same_orders_trades_nothing_new(root: Path, request_for, submission):
    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission("2023-06-01", AAPL=10.0))
    before = state_file(root).read_bytes()
    first = orders.load()
    orders.save(submission("2023-06-01", AAPL=10.0))
    assert state_file(root).read_bytes() == before
    pd.testing.assert_frame_equal(orders.load(), first)


def test_a_failure_mid_submission_leaves_the_account_unchanged(
    root: Path, request_for, submission, monkeypatch
):
    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission("2023-06-01", AAPL=1.0))
    before = state_file(root).read_bytes()
    reports_before = orders.load()

    real_submit = LocalPaperBroker.submit_order
    calls = []

    def flaky(self, order):
        calls.append(order.client_order_id)
        if len(calls) == 2:
            raise BrokerError("POST /orders timed out")
        return real_submit(self, order)

    monkeypatch.setattr(LocalPaperBroker, "submit_order", flaky)
    with pytest.raises(DatasetError, match=r"failed after 1 of 2 orders: POST /orders timed out"):
        orders.save(submission("2023-06-02", MSFT=1.0, NVDA=1.0))
    assert len(calls) == 2
    assert state_file(root).read_bytes() == before
    pd.testing.assert_frame_equal(orders.load(), reports_before)


def test_the_account_replays_the_sessions_it_has_not_seen(root: Path, request_for, submission):
    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission("2023-06-01", fill_at="next_open", AAPL=10.0))
    assert orders.load()["status"].tolist() == ["accepted"]

    account = BrokerAccountDataset(filepath=str(root))
    account.save(request_for("2023-06-05", fill_at="next_open"))
    snapshot = account.load()
    state = json.loads(state_file(root).read_text())
    fill = state["fills"][0]
    # The 2023-06-01 order met the 2023-06-02 open (181.029999), plus 5 bps of slippage.
    assert fill["date"] == "2023-06-02"
    assert fill["price"] == pytest.approx(181.029999 * 1.0005)
    assert snapshot.positions["AAPL"].qty == 10.0
    assert snapshot.positions["AAPL"].market_price == pytest.approx(179.580002)
    assert snapshot.clock.execution_session == dt.date(2023, 6, 6)


def test_an_older_run_date_never_rewinds_the_account(root: Path, request_for, submission):
    account = BrokerAccountDataset(filepath=str(root))
    account.save(request_for("2023-06-05", fill_at="next_open"))
    account.save(request_for("2023-06-01", fill_at="next_open"))
    assert account.load().clock.execution_session == dt.date(2023, 6, 6)
