"""The simulated paper broker: fills, costs, cash and positions, and its JSON state."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core.broker_types import FINAL_STATES, OrderRequest

DAY = pd.Timestamp("2023-06-01")
NEXT = pd.Timestamp("2023-06-02")


def broker(cash: float = 10_000.0, **kwargs) -> LocalPaperBroker:
    """A broker that has seen the close of ``DAY``: AAA at 100, BBB at 50."""
    b = LocalPaperBroker(LocalPaperBroker.new_state(cash), **kwargs)
    b.open_session(DAY, {"AAA": 99.0, "BBB": 49.0})
    b.close_session(DAY, {"AAA": 100.0, "BBB": 50.0})
    return b


def order(symbol: str, side: str, qty: float, cid: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid or f"t-20230601-{symbol}-{side}",
        symbol=symbol,
        side=side,
        qty=qty,
        reference_price=100.0,
        decision_date=DAY.date(),
        target_date=NEXT.date(),
    )


def test_rejects_an_unknown_fill_mode():
    with pytest.raises(ValueError, match="fill_at must be 'close' or 'next_open'"):
        LocalPaperBroker(LocalPaperBroker.new_state(1.0), fill_at="vwap")


def test_a_new_account_has_no_clock_until_it_sees_market_data():
    with pytest.raises(RuntimeError, match="no market data"):
        LocalPaperBroker(LocalPaperBroker.new_state(1.0)).account()


def test_fills_at_the_close_with_slippage_and_commission():
    b = broker(fill_at="close", slippage_bps=10.0, commission_bps=20.0)
    report = b.submit_order(order("AAA", "buy", 10))
    price = 100.0 * 1.001
    fee = 10 * price * 0.002
    assert report.status == "filled"
    assert report.filled_qty == 10
    assert report.filled_avg_price == pytest.approx(price)
    assert report.fee == pytest.approx(fee)
    assert b.state["cash"] == pytest.approx(10_000.0 - 10 * price - fee)
    position = b.positions()["AAA"]
    assert position.qty == 10 and position.avg_price == pytest.approx(price)
    assert position.market_price == 100.0
    assert b.equity() == pytest.approx(10_000.0 - 10 * price - fee + 10 * 100.0)


def test_a_sell_receives_the_price_less_slippage_and_pays_commission():
    b = broker(fill_at="close", slippage_bps=10.0, commission_bps=20.0)
    b.submit_order(order("AAA", "buy", 10))
    cash = b.state["cash"]
    b.close_session(NEXT, {"AAA": 110.0, "BBB": 50.0})
    report = b.submit_order(order("AAA", "sell", 10, cid="t-20230602-AAA-sell"))
    price = 110.0 * 0.999
    assert report.filled_avg_price == pytest.approx(price)
    assert b.state["cash"] == pytest.approx(cash + 10 * price * (1 - 0.002))
    assert b.positions() == {}
    realized = b.state["fills"][-1]["realized_pnl"]
    assert realized == pytest.approx((price - 100.1) * 10 - 10 * price * 0.002)


def test_next_open_orders_stay_pending_until_the_next_session_opens():
    b = broker(fill_at="next_open", slippage_bps=10.0)
    assert b.clock().execution_session == NEXT.date()
    report = b.submit_order(order("AAA", "buy", 10))
    assert report.status == "accepted"
    assert b.state["cash"] == 10_000.0 and b.positions() == {}

    fills = b.open_session(NEXT, {"AAA": 102.0})
    assert [(f["symbol"], f["qty"], f["price"]) for f in fills] == [("AAA", 10, 102.0 * 1.001)]
    assert b.state["pending"] == []
    assert b.get_order_by_client_id(report.client_order_id).status == "filled"
    assert b.state["cash"] == pytest.approx(10_000.0 - 10 * 102.0 * 1.001)


def test_a_pending_order_without_an_open_price_waits():
    b = broker(fill_at="next_open")
    b.submit_order(order("AAA", "buy", 10))
    assert b.open_session(NEXT, {"BBB": 50.0, "AAA": float("nan")}) == []
    assert b.state["pending"] == ["t-20230601-AAA-buy"]


def test_pending_sells_fill_before_buys_so_their_cash_is_there():
    b = broker(cash=1_000.0, fill_at="close")
    b.submit_order(order("AAA", "buy", 10))  # all the cash
    b.fill_at = "next_open"
    b.submit_order(order("BBB", "buy", 20))
    b.submit_order(order("AAA", "sell", 10))
    fills = b.open_session(NEXT, {"AAA": 100.0, "BBB": 50.0})
    assert [(f["side"], f["symbol"]) for f in fills] == [("sell", "AAA"), ("buy", "BBB")]
    assert b.positions()["BBB"].qty == 20
    assert b.state["cash"] == pytest.approx(0.0)


def test_no_shorting():
    b = broker(fill_at="close")
    report = b.submit_order(order("AAA", "sell", 1))
    assert report.status == "rejected"
    assert report.message == "cannot sell 1.0 AAA: only 0.0 held"
    assert b.state["cash"] == 10_000.0 and b.positions() == {}


@pytest.fixture
def holding_ten() -> LocalPaperBroker:
    """A broker that bought 10 AAA at the close and now fills at the next open."""
    b = broker(fill_at="close")
    b.submit_order(order("AAA", "buy", 10))
    b.fill_at = "next_open"
    return b


def test_a_pending_sell_larger_than_the_position_sells_what_is_left(holding_ten):
    b = holding_ten
    b.submit_order(order("AAA", "sell", 6, cid="first"))
    b.submit_order(order("AAA", "sell", 6, cid="second"))
    b.open_session(NEXT, {"AAA": 100.0})
    second = b.get_order_by_client_id("second")
    assert (second.status, second.filled_qty) == ("expired", 4.0)
    assert second.message == "remainder expired: only 4.0 AAA held at fill"
    assert b.positions() == {}


def test_two_pending_sells_never_sell_more_than_is_held(holding_ten):
    b = holding_ten
    b.submit_order(order("AAA", "sell", 10, cid="first"))
    b.submit_order(order("AAA", "sell", 10, cid="second"))
    fills = b.open_session(NEXT, {"AAA": 100.0})
    assert [f["client_order_id"] for f in fills] == ["first"]
    second = b.get_order_by_client_id("second")
    assert second.status == "canceled" and "no AAA left to sell" in second.message
    assert b.positions() == {}


def test_a_buy_beyond_the_cash_fills_what_is_affordable_in_whole_shares():
    b = broker(cash=1_050.0, fill_at="close")
    report = b.submit_order(order("AAA", "buy", 20))
    assert report.status == "expired"  # final: the remainder is not working any more
    assert report.filled_qty == 10
    assert report.message == "remainder expired: insufficient cash at fill"
    assert b.state["cash"] == pytest.approx(50.0)


def test_a_fractional_buy_beyond_the_cash_fills_a_fraction():
    b = broker(cash=1_050.0, fill_at="close")
    report = b.submit_order(order("AAA", "buy", 20.5))
    assert report.filled_qty == pytest.approx(10.5)
    assert b.state["cash"] == pytest.approx(0.0, abs=1e-9)


def test_a_buy_with_no_cash_is_canceled():
    b = broker(cash=50.0, fill_at="close")
    report = b.submit_order(order("AAA", "buy", 1))
    assert report.status == "canceled"
    assert report.message == "insufficient cash at fill"
    assert b.state["cash"] == 50.0 and b.state["fills"] == []


def test_non_positive_quantity_and_unknown_price_are_rejected():
    b = broker(fill_at="close")
    assert b.submit_order(order("AAA", "buy", 0)).status == "rejected"
    report = b.submit_order(order("ZZZ", "buy", 1))
    assert (report.status, report.message) == ("rejected", "no closing price for ZZZ")


def test_submitting_the_same_client_order_id_twice_fills_once():
    b = broker(fill_at="close")
    first = b.submit_order(order("AAA", "buy", 10))
    again = b.submit_order(order("AAA", "buy", 10))
    assert again == first
    assert len(b.state["fills"]) == 1
    assert b.positions()["AAA"].qty == 10
    assert b.get_order_by_client_id("never-sent") is None


def test_clock_follows_the_fill_mode():
    at_close = broker(fill_at="close").clock()
    assert at_close.execution_session == DAY.date()
    assert at_close.is_open
    assert at_close.timestamp == dt.datetime(2023, 6, 1, 21, tzinfo=dt.UTC)
    friday = LocalPaperBroker(LocalPaperBroker.new_state(1.0), fill_at="next_open")
    friday.close_session("2023-06-02", {"AAA": 1.0})
    assert friday.clock().execution_session == dt.date(2023, 6, 5)


def test_state_round_trips_through_json():
    b = broker(fill_at="close", slippage_bps=5.0, commission_bps=1.0)
    b.submit_order(order("AAA", "buy", 10))
    b.fill_at = "next_open"
    b.submit_order(order("BBB", "buy", 3))
    restored = LocalPaperBroker(
        json.loads(json.dumps(b.state)), fill_at="next_open", slippage_bps=5.0, commission_bps=1.0
    )
    assert restored.account() == b.account()
    assert restored.open_session(NEXT, {"BBB": 51.0}) == b.open_session(NEXT, {"BBB": 51.0})
    assert restored.state == b.state


def test_nan_or_negative_closes_never_mark_a_position():
    b = broker(fill_at="close")
    b.submit_order(order("AAA", "buy", 10))
    b.close_session(NEXT, {"AAA": -5.0, "BBB": float("nan")})
    assert b.positions()["AAA"].market_price == 100.0
    assert b.state["last_prices"] == {"AAA": 100.0, "BBB": 50.0}
    assert b.state["as_of"] == "2023-06-02"


def _listed(state: dict) -> list[str]:
    """What a snapshot lists, by definition: the orders submitted in the last ten calendar days
    and every order still open, in the order they were placed."""
    since = (dt.date.fromisoformat(state["as_of"]) - dt.timedelta(days=10)).isoformat()
    return [
        cid
        for cid, record in state["orders"].items()
        if record["status"] not in FINAL_STATES or (record["submitted_at"] or "") >= since
    ]


def test_recent_orders_stay_those_of_the_last_ten_days_and_the_open_ones_over_a_long_run():
    # The broker indexes its orders instead of scanning all of them for every snapshot; this
    # follows a run of 60 sessions with fills, rejections, orders that never fill, a session
    # replayed out of order and a restored state, and compares every snapshot with the rule.
    b = LocalPaperBroker(LocalPaperBroker.new_state(1e6), fill_at="next_open")
    days = pd.bdate_range("2023-01-02", periods=60)
    snapshots = []
    for i, day in enumerate(days):
        if i == 30:  # a state taken over whole (a new orders dict)
            b._apply({"kind": "restored", "state": json.loads(json.dumps(b.state))})
        if i == 40:  # an earlier session replayed: submission dates stop being monotonic
            b.close_session(days[5], {"AAA": 100.0})
            b.submit_order(order("AAA", "buy", 1, cid=f"late-{i}"))
        b.open_session(day, {"AAA": 100.0 + i})  # CCC never has an open: its orders stay open
        b.close_session(day, {"AAA": 100.0 + i, "CCC": 10.0})
        for symbol, side in (("AAA", "buy"), ("CCC", "buy"), ("AAA", "sell"), ("BBB", "sell")):
            b.submit_order(order(symbol, side, 1, cid=f"{i}-{symbol}-{side}"))
        listed = [r.client_order_id for r in b.account().orders]
        assert listed == _listed(b.state)
        snapshots.append(listed)
    last = snapshots[-1]
    assert "0-CCC-buy" in last and "0-AAA-buy" not in last  # open for 60 sessions; filled
    assert "late-40" not in last and "58-BBB-sell" in last  # old submission; rejected, recent
    assert len(last) < len(b.state["orders"]) / 2
