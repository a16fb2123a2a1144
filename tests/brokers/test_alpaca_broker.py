"""The Alpaca broker: alpaca-py's real TradingClient against the loopback fake Alpaca, directly
and through the trading datasets (``BrokerAccountDataset`` / ``BrokerOrdersDataset``)."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pandas as pd
import pytest
from alpaca.trading.models import Clock as AlpacaClock
from alpaca.trading.models import Order, Position, TradeAccount
from fakes.alpaca_server import API_KEY, NEW_YORK, SECRET_KEY, FakeAlpacaServer
from kedro.io.core import DatasetError

from stock_mlops.brokers.alpaca import AlpacaBroker, neutral_status
from stock_mlops.core.broker_types import (
    BrokerError,
    BrokerRequest,
    OrderRequest,
    OrderSubmission,
)
from stock_mlops.core.params import AlpacaBrokerParams, LocalBrokerParams
from stock_mlops.datasets import BrokerAccountDataset, BrokerOrdersDataset
from stock_mlops.datasets.broker import LIVE_CONFIRMATION_VALUE, LIVE_CONFIRMATION_VARIABLE

ORDERS = "/v2/orders"
TIMEOUT = 0.3
DECIDED, TARGET = dt.date(2023, 12, 29), dt.date(2024, 1, 2)


@pytest.fixture
def fake(alpaca_keys, monkeypatch):
    monkeypatch.delenv(LIVE_CONFIRMATION_VARIABLE, raising=False)
    with FakeAlpacaServer(cash=100_000.0) as server:
        server.set_price("AAPL", 192.53)
        server.set_price("MSFT", 376.04)
        yield server


@pytest.fixture
def broker(fake) -> AlpacaBroker:
    return AlpacaBroker.from_environment(paper=True, url_override=fake.url, timeout_seconds=TIMEOUT)


def _order(symbol: str = "AAPL", side: str = "buy", qty: float = 10.0) -> OrderRequest:
    return OrderRequest(
        client_order_id=f"base-{DECIDED:%Y%m%d}-{symbol}-{side}",
        symbol=symbol,
        side=side,
        qty=qty,
        reference_price=192.53,
        decision_date=DECIDED,
        target_date=TARGET,
    )


def _submission(
    fake: FakeAlpacaServer, *orders: OrderRequest, live: bool = False
) -> OrderSubmission:
    request = BrokerRequest(
        broker="alpaca",
        live=live,
        as_of=DECIDED,
        local=LocalBrokerParams(),
        alpaca=AlpacaBrokerParams(url_override=fake.url, timeout_seconds=TIMEOUT),
        market_bars=pd.DataFrame(),  # Alpaca marks positions itself: no bars needed
    )
    return OrderSubmission(request=request, orders=orders)


# ---------------------------------------------------------------------------- the fake itself
def test_fake_payloads_validate_against_alpaca_py_models(fake, broker):
    """Keeps the fake honest: alpaca-py's own models accept everything it sends."""
    fake.add_position("MSFT", 5, 300.0, 376.04)
    broker.submit_order(_order())

    TradeAccount(**fake.account_json())
    AlpacaClock(**fake.clock_json())
    assert [Position(**p).symbol for p in fake.positions_json()] == ["MSFT"]
    assert [Order(**o).client_order_id for o in fake.orders] == [_order().client_order_id]


# ---------------------------------------------------------------------------- connecting
@pytest.mark.parametrize("variable", ["ALPACA_API_KEY", "ALPACA_SECRET_KEY"])
def test_missing_key_names_the_variable(fake, monkeypatch, variable):
    monkeypatch.setenv(variable, "")

    with pytest.raises(BrokerError, match=variable):
        AlpacaBroker.from_environment(url_override=fake.url)


def test_unreachable_broker_is_a_broker_error(monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", API_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET_KEY)
    with FakeAlpacaServer() as server:
        url = server.url
    broker = AlpacaBroker.from_environment(url_override=url, timeout_seconds=TIMEOUT)

    with pytest.raises(BrokerError, match="get_account failed: cannot connect"):
        broker.account()


def test_a_slow_answer_times_out(fake, broker):
    fake.slow_next("GET", "/v2/account", 2.0, process=True)
    started = time.monotonic()

    with pytest.raises(BrokerError, match="get_account failed: no answer in time"):
        broker.account()

    assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------------------- reading
def test_account_maps_cash_positions_clock_and_known_orders(fake, broker):
    fake.add_position("MSFT", 5, 300.0, 376.04)
    broker.submit_order(_order())

    snapshot = broker.account()

    assert snapshot.broker == "alpaca"
    assert snapshot.cash == 100_000.0
    (msft,) = snapshot.positions.values()
    assert (msft.symbol, msft.qty, msft.avg_price, msft.market_price) == (
        "MSFT",
        5.0,
        300.0,
        376.04,
    )
    assert snapshot.equity == pytest.approx(100_000.0 + 5 * 376.04)
    assert snapshot.known_client_order_ids == {_order().client_order_id}
    # Friday after the close: an order placed now meets Tuesday's session (New Year's Day).
    assert snapshot.clock.is_open is False
    assert snapshot.clock.execution_session == TARGET
    assert snapshot.clock.timestamp == dt.datetime(2023, 12, 29, 17, 5, tzinfo=NEW_YORK)
    (listing,) = fake.requests_to("GET", ORDERS)
    assert listing.query["status"] == "all" and listing.query["limit"] == "500"


def test_the_snapshot_carries_buying_power_and_the_recent_orders_with_their_fills(fake, broker):
    placed = broker.submit_order(_order(qty=10))
    fake.fill_order(placed.broker_order_id, 190.0)

    snapshot = broker.account()

    assert snapshot.buying_power == pytest.approx(float(fake.account_json()["buying_power"]))
    (report,) = snapshot.orders
    assert (report.client_order_id, report.status, report.filled_qty) == (
        placed.client_order_id,
        "filled",
        10.0,
    )
    assert report.filled_avg_price == 190.0 and report.filled_at


def test_a_position_whose_symbol_is_not_a_name_is_refused(fake, broker):
    fake.add_position("MSFT", 5, 300.0, 376.04)
    fake.positions["../ETC"] = {"qty": 1.0, "avg_entry_price": 1.0}
    fake.set_price("../ETC", 1.0)

    with pytest.raises(BrokerError, match=r"position symbol '\.\./ETC' is not a valid symbol"):
        broker.account()


@pytest.mark.parametrize(
    ("now", "is_open", "next_open", "session"),
    [
        # open: today
        ((2024, 1, 2, 10, 0), True, (2024, 1, 3, 9, 30), dt.date(2024, 1, 2)),
        # before the open: the same day's session
        ((2024, 1, 2, 8, 0), False, (2024, 1, 2, 9, 30), dt.date(2024, 1, 2)),
        # late evening in New York, already the next day in UTC: the next open decides
        ((2024, 1, 2, 21, 30), False, (2024, 1, 3, 9, 30), dt.date(2024, 1, 3)),
    ],
)
def test_clock_execution_session(fake, broker, now, is_open, next_open, session):
    fake.set_clock(
        dt.datetime(*now, tzinfo=NEW_YORK),
        is_open=is_open,
        next_open=dt.datetime(*next_open, tzinfo=NEW_YORK),
    )

    clock = broker.clock()

    assert clock.is_open is is_open
    assert clock.execution_session == session


def test_order_reports_follow_fills(fake, broker):
    placed = broker.submit_order(_order(qty=10))
    fake.fill_order(placed.broker_order_id, 190.0, qty=4)

    partial = broker.get_order_by_client_id(placed.client_order_id)
    assert (partial.status, partial.filled_qty, partial.filled_avg_price) == (
        "partially_filled",
        4.0,
        190.0,
    )
    fake.fill_order(placed.broker_order_id, 191.0)
    filled = broker.get_order_by_client_id(placed.client_order_id)
    assert (filled.status, filled.filled_qty) == ("filled", 10.0)
    assert filled.filled_avg_price == pytest.approx(190.6)
    assert broker.positions()["AAPL"].qty == 10.0
    assert broker.account().cash == pytest.approx(100_000.0 - 4 * 190.0 - 6 * 191.0)


@pytest.mark.parametrize(
    ("alpaca", "filled", "neutral"),
    [
        ("new", 0, "new"),
        ("accepted", 0, "accepted"),
        ("pending_new", 0, "pending_new"),
        ("partially_filled", 3, "partially_filled"),
        ("filled", 10, "filled"),
        ("canceled", 0, "canceled"),
        ("expired", 0, "expired"),
        ("rejected", 0, "rejected"),
        ("done_for_day", 0, "expired"),
        ("done_for_day", 3, "partially_filled"),
        ("calculated", 10, "filled"),
        ("pending_cancel", 0, "canceled"),
        ("replaced", 0, "canceled"),
        ("held", 0, "accepted"),
        ("a_status_alpaca_adds_later", 0, "accepted"),
    ],
)
def test_alpaca_statuses_map_onto_neutral_ones(alpaca, filled, neutral):
    assert neutral_status(alpaca, 10.0, float(filled)) == neutral


def test_a_mapped_status_keeps_alpacas_word(fake, broker):
    placed = broker.submit_order(_order())
    fake.set_order_status(placed.broker_order_id, "done_for_day")

    report = broker.get_order_by_client_id(placed.client_order_id)

    assert report.status == "expired"
    assert "done_for_day" in report.message


# ---------------------------------------------------------------------------- submitting
def test_submit_sends_a_day_market_order_with_the_client_order_id(fake, broker):
    report = broker.submit_order(_order(qty=10))

    (post,) = fake.requests_to("POST", ORDERS)
    assert post.body == {
        "symbol": "AAPL",
        "qty": 10.0,
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": "base-20231229-AAPL-buy",
    }
    assert report.client_order_id == "base-20231229-AAPL-buy"
    assert uuid.UUID(report.broker_order_id)
    assert (report.symbol, report.side, report.qty, report.status) == (
        "AAPL",
        "buy",
        10.0,
        "accepted",
    )


def test_fractional_quantity_is_sent_as_is(fake, broker):
    report = broker.submit_order(_order(qty=1.2345))

    assert fake.requests_to("POST", ORDERS)[0].body["qty"] == 1.2345
    assert report.qty == 1.2345


def test_unknown_client_order_id_is_none(fake, broker):
    assert broker.get_order_by_client_id("base-20231229-NOPE-buy") is None


def test_resubmitting_the_same_client_order_id_returns_the_first_order(fake, broker):
    first = broker.submit_order(_order())
    again = broker.submit_order(_order())

    assert again == first
    assert len(fake.orders) == 1
    assert len(fake.requests_to("POST", ORDERS)) == 2, "Alpaca itself refused the duplicate"


def test_refusal_is_a_broker_error_with_alpacas_message(fake, broker):
    with pytest.raises(BrokerError) as caught:
        broker.submit_order(_order(qty=1000))  # 192 530 USD against 100 000 of cash

    message = str(caught.value)
    assert "submit_order" in message and "AAPL" in message
    assert "HTTP 403: insufficient buying power" in message
    assert SECRET_KEY not in message
    assert fake.orders == []


def test_server_error_without_an_order_is_a_broker_error(fake, broker):
    fake.fail_next("POST", ORDERS, 500, "internal server error")

    with pytest.raises(BrokerError, match="HTTP 500: internal server error"):
        broker.submit_order(_order())

    assert fake.orders == []


def test_timeout_after_alpaca_took_the_order_is_not_a_failure(fake, broker):
    fake.slow_next("POST", ORDERS, 1.0, process=True)

    report = broker.submit_order(_order())

    assert report.client_order_id == _order().client_order_id
    assert len(fake.orders) == 1
    assert len(fake.requests_to("GET", "/v2/orders:by_client_order_id")) == 1


def test_timeout_of_a_lost_order_is_a_broker_error(fake, broker):
    fake.slow_next("POST", ORDERS, 1.0, process=False)

    with pytest.raises(BrokerError, match="no answer in time"):
        broker.submit_order(_order())

    assert fake.orders == []


def test_unknown_fate_is_said_so(fake, broker):
    fake.slow_next("POST", ORDERS, 1.0, process=False)
    fake.fail_next("GET", "/v2/orders:by_client_order_id", 500, "internal server error")

    with pytest.raises(BrokerError, match="whether Alpaca holds it is unknown"):
        broker.submit_order(_order())


def test_cancel_orders_is_best_effort(fake, broker):
    open_order = broker.submit_order(_order("AAPL", qty=1))
    filled = broker.submit_order(_order("MSFT", qty=1))
    fake.fill_order(filled.broker_order_id, 376.0)

    cancelled = broker.cancel_orders(
        [open_order.broker_order_id, filled.broker_order_id, str(uuid.uuid4())]
    )

    assert cancelled == [open_order.broker_order_id]
    status = {o["id"]: o["status"] for o in fake.orders}
    assert status == {open_order.broker_order_id: "canceled", filled.broker_order_id: "filled"}


# ---------------------------------------------------------------------------- datasets
def test_account_dataset_stores_the_alpaca_snapshot(fake, tmp_path):
    fake.add_position("MSFT", 5, 300.0, 376.04)
    dataset = BrokerAccountDataset(filepath=str(tmp_path / "broker"))

    dataset.save(_submission(fake).request)
    snapshot = dataset.load()

    assert snapshot.broker == "alpaca"
    assert snapshot.cash == 100_000.0
    assert snapshot.positions["MSFT"].market_price == 376.04
    assert snapshot.clock.execution_session == TARGET


def test_orders_dataset_submits_once_per_client_order_id(fake, tmp_path):
    dataset = BrokerOrdersDataset(filepath=str(tmp_path / "broker"))
    submission = _submission(fake, _order("MSFT", "sell", 2), _order("AAPL", "buy", 3))

    dataset.save(submission)
    dataset.save(submission)

    assert len(fake.requests_to("POST", ORDERS)) == 2
    assert sorted(o["client_order_id"] for o in fake.orders) == [
        "base-20231229-AAPL-buy",
        "base-20231229-MSFT-sell",
    ]
    reports = dataset.load()
    assert reports["client_order_id"].tolist() == [
        "base-20231229-MSFT-sell",
        "base-20231229-AAPL-buy",
    ]
    assert reports["status"].tolist() == ["accepted", "accepted"]


def test_orders_dataset_refusal_cancels_what_the_submission_placed(fake, tmp_path):
    dataset = BrokerOrdersDataset(filepath=str(tmp_path / "broker"))
    submission = _submission(fake, _order("MSFT", "buy", 2), _order("AAPL", "buy", 1000))

    with pytest.raises(DatasetError) as caught:
        dataset.save(submission)

    message = str(caught.value)
    assert "failed after 1 of 2 orders" in message
    assert "insufficient buying power" in message
    (msft,) = fake.orders
    assert msft["symbol"] == "MSFT" and msft["status"] == "canceled"
    assert [r.path for r in fake.requests if r.method == "DELETE"] == [f"{ORDERS}/{msft['id']}"]
    with pytest.raises(DatasetError, match="no submissions"):
        dataset.load()


def test_orders_dataset_timeout_cancels_what_the_submission_placed(fake, tmp_path):
    dataset = BrokerOrdersDataset(filepath=str(tmp_path / "broker"))
    submission = _submission(fake, _order("MSFT", "sell", 2), _order("AAPL", "buy", 3))
    fake.add_position("MSFT", 2, 300.0, 376.04)
    # The first POST goes through; the second is lost and its answer comes too late.
    fake.slow_next("POST", ORDERS, 1.0, process=False, skip=1)

    with pytest.raises(DatasetError) as caught:
        dataset.save(submission)

    assert "failed after 1 of 2 orders" in str(caught.value)
    assert "no answer in time" in str(caught.value)
    (msft,) = fake.orders
    assert msft["status"] == "canceled"
    assert fake.order_by_client_id("base-20231229-AAPL-buy") is None


def test_live_trading_without_confirmation_is_refused(fake, tmp_path):
    dataset = BrokerOrdersDataset(filepath=str(tmp_path / "broker"))

    with pytest.raises(DatasetError, match=LIVE_CONFIRMATION_VARIABLE):
        dataset.save(_submission(fake, _order(), live=True))

    assert fake.requests == []


def test_live_trading_with_confirmation_uses_the_live_client(fake, tmp_path, monkeypatch):
    monkeypatch.setenv(LIVE_CONFIRMATION_VARIABLE, LIVE_CONFIRMATION_VALUE)
    connections = []
    connect = AlpacaBroker.from_environment.__func__

    def spy(cls, **kwargs):
        connections.append(kwargs)
        return connect(cls, **kwargs)

    monkeypatch.setattr(AlpacaBroker, "from_environment", classmethod(spy))
    dataset = BrokerOrdersDataset(filepath=str(tmp_path / "broker"))

    dataset.save(_submission(fake, _order(), live=True))

    assert [c["paper"] for c in connections] == [False]
    assert len(fake.orders) == 1


def test_missing_keys_through_the_dataset(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("ALPACA_API_KEY")
    dataset = BrokerAccountDataset(filepath=str(tmp_path / "broker"))

    with pytest.raises(DatasetError, match="ALPACA_API_KEY"):
        dataset.save(_submission(fake).request)
