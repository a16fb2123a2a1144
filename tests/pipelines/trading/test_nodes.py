"""Nodes of the trading pipeline, on the real bundled prices of AAPL, MSFT and NVDA."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from stock_mlops.core.broker_types import AccountSnapshot, Clock, Position
from stock_mlops.core.outcomes import as_of_date
from stock_mlops.core.params import ParameterError, TradingParams
from stock_mlops.core.strategy import APPROVED, SKIPPED
from stock_mlops.pipelines.trading.nodes import (
    broker_request,
    build_submission,
    decide_trades,
    latest_predictions,
    reconcile_orders,
    record_decisions,
    request_account_snapshot,
)

RUN_DATE = dt.date(2023, 6, 1)
TARGET = pd.Timestamp("2023-06-02")
RUN_INFO = {"run_id": "run-1", "started_at": "2023-06-01T21:30:00+00:00"}
TRADING = TradingParams.parse(
    {"local": {"fill_at": "close", "allow_close_fill": True, "slippage_bps": 0.0}}
)


def closes_on(prices: pd.DataFrame, day: dt.date) -> dict[str, float]:
    rows = prices[prices["date"] == pd.Timestamp(day)]
    return dict(zip(rows["symbol"], rows["close"], strict=True))


def prediction_log(
    prices: pd.DataFrame,
    returns: dict[str, float],
    team: str = "red",
    day: dt.date = RUN_DATE,
    target: pd.Timestamp = TARGET,
    created_at: str = "2023-06-01T21:00:00",
) -> pd.DataFrame:
    """Prediction log rows made from ``day``'s closes with the given predicted returns."""
    closes = closes_on(prices, day)
    return pd.DataFrame(
        {
            "run_id": "inference-1",
            "model_version": "3",
            "team": team,
            "symbol": list(returns),
            "feature_date": pd.Timestamp(day),
            "target_date": target,
            "last_close": [closes[s] for s in returns],
            "prediction": [closes[s] * (1 + r) for s, r in returns.items()],
            "predicted_return": list(returns.values()),
            "predicted_direction": ["up" if r > 0 else "down" for r in returns.values()],
            "created_at": pd.Timestamp(created_at),
        }
    )


def snapshot(
    cash: float = 100_000.0, holdings: dict[str, Position] | None = None
) -> AccountSnapshot:
    clock = Clock(dt.datetime(2023, 6, 1, 21, tzinfo=dt.UTC), True, RUN_DATE)
    return AccountSnapshot("local", cash, holdings or {}, clock)


def decided(orders: list[dict[str, Any]]) -> pd.DataFrame:
    """A decided-orders frame with just the columns reconciliation reads."""
    return pd.DataFrame(orders, columns=["client_order_id", "symbol", "side", "qty", "status"])


def reported(reports: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        reports, columns=["client_order_id", "symbol", "side", "qty", "status", "filled_qty"]
    )


# ---------------------------------------------------------------------------------- requests
def test_as_of_date_is_the_run_date_or_the_newest_bar(small_prices: pd.DataFrame):
    assert as_of_date(str(RUN_DATE), small_prices["date"]) == pd.Timestamp("2023-06-01")
    assert as_of_date(None, small_prices["date"]) == pd.Timestamp("2023-12-29")


def test_broker_request_carries_settings_and_bars_but_no_secrets(small_prices: pd.DataFrame):
    params = TradingParams.parse({"alpaca": {"url_override": "http://127.0.0.1:9"}})
    out = broker_request(params, small_prices, pd.Timestamp("2023-06-01"))
    assert out.broker == "local" and out.live is False
    assert out.as_of == RUN_DATE
    assert out.market_bars["date"].max() == pd.Timestamp("2023-06-01")
    described = out.describe()
    assert described["as_of"] == "2023-06-01"
    assert described["local"]["initial_cash"] == 100_000.0
    assert described["alpaca"]["url_override"] == "http://127.0.0.1:9"
    assert not any("key" in k.lower() or "secret" in k.lower() for k in described["alpaca"])


def test_request_account_snapshot(small_prices: pd.DataFrame):
    out = request_account_snapshot(small_prices, TradingParams(), None)
    assert out.as_of == dt.date(2023, 12, 29)


def test_trading_parameters_reject_a_typo_with_a_suggestion():
    with pytest.raises(ParameterError, match="trading.treshold.*did you mean 'threshold'"):
        TradingParams.parse({"treshold": 0.01}, "trading")


# ---------------------------------------------------------------------------------- decisions
def test_latest_predictions_keeps_the_newest_of_the_team_up_to_the_date(
    small_prices: pd.DataFrame,
):
    log = pd.concat(
        [
            prediction_log(small_prices, {"AAPL": 0.01, "MSFT": 0.01}),
            prediction_log(small_prices, {"AAPL": 0.02}, created_at="2023-06-01T22:00:00"),
            prediction_log(small_prices, {"AAPL": 0.03}, team="blue"),
            prediction_log(
                small_prices,
                {"MSFT": 0.05},
                day=dt.date(2023, 6, 2),
                target=pd.Timestamp("2023-06-05"),
            ),
        ]
    )
    out = latest_predictions(log, "red", pd.Timestamp(RUN_DATE))
    assert dict(zip(out["symbol"], out["predicted_return"], strict=True)) == {
        "AAPL": 0.02,
        "MSFT": 0.01,
    }


def test_latest_predictions_of_another_team_only_is_empty(small_prices: pd.DataFrame):
    log = prediction_log(small_prices, {"AAPL": 0.01}, team="blue")
    assert latest_predictions(log, "red", pd.Timestamp(RUN_DATE)).empty


def test_decide_trades_buys_the_best_prediction(small_prices: pd.DataFrame):
    log = prediction_log(small_prices, {"AAPL": 0.01, "MSFT": 0.03, "NVDA": -0.02})
    orders = decide_trades(log, small_prices, snapshot(), TRADING, "red", str(RUN_DATE))
    ok = orders[orders["status"] == APPROVED]
    assert ok[["symbol", "side"]].values.tolist() == [["MSFT", "buy"]]
    assert ok["qty"].iat[0] == 100_000 // closes_on(small_prices, RUN_DATE)["MSFT"]
    assert ok["client_order_id"].iat[0] == "red-20230601-MSFT-buy"
    logged, passed_on = record_decisions(orders, RUN_INFO, "local")
    assert set(logged["run_id"]) == {"run-1"}
    assert set(logged["broker"]) == {"local"}
    assert set(logged["event"]) == {"decided"}
    assert (logged["decided_at"] == pd.Timestamp(RUN_INFO["started_at"])).all()
    assert "run_id" not in orders  # the decision itself is not changed
    assert passed_on is orders


def test_decide_trades_without_fresh_predictions_trades_nothing(small_prices: pd.DataFrame):
    stale = prediction_log(
        small_prices, {"AAPL": 0.05}, day=dt.date(2023, 5, 31), target=pd.Timestamp(RUN_DATE)
    )
    holding = {"MSFT": Position("MSFT", 10, 300.0, 332.58)}
    orders = decide_trades(
        stale, small_prices, snapshot(0.0, holding), TRADING, "red", str(RUN_DATE)
    )
    assert (orders["status"] == APPROVED).sum() == 0
    by_symbol = orders.set_index("symbol")
    assert by_symbol.loc["AAPL", "reason"] == "prediction made from 2023-05-31, not 2023-06-01"
    assert by_symbol.loc["MSFT", "status"] == SKIPPED


# -------------------------------------------------------------------------------- submission
def test_build_submission_sends_approved_orders_sells_first(small_prices: pd.DataFrame):
    log = prediction_log(small_prices, {"AAPL": -0.02, "MSFT": 0.03, "NVDA": -0.01})
    holding = {"AAPL": Position("AAPL", 5, 150.0, 180.09)}
    limit_one = TradingParams.parse(
        {**TRADING.model_dump(mode="json"), "risk": {"max_orders_per_run": 1}}
    )
    orders = decide_trades(
        log, small_prices, snapshot(10_000.0, holding), limit_one, "red", str(RUN_DATE)
    )
    both = decide_trades(
        log, small_prices, snapshot(10_000.0, holding), TRADING, "red", str(RUN_DATE)
    )
    out = build_submission(both.iloc[::-1], small_prices, TRADING, str(RUN_DATE))
    assert [(o.symbol, o.side) for o in out.orders] == [("AAPL", "sell"), ("MSFT", "buy")]
    assert out.orders[0].decision_date == RUN_DATE
    assert out.orders[0].target_date == TARGET.date()
    assert out.request.as_of == RUN_DATE
    limited = build_submission(orders, small_prices, TRADING, str(RUN_DATE))
    assert [(o.symbol, o.side) for o in limited.orders] == [("AAPL", "sell")]


def test_build_submission_without_approved_orders_sends_nothing(small_prices: pd.DataFrame):
    nothing = decided([{"client_order_id": "x", "symbol": "AAPL", "side": "buy", "qty": 1.0}])
    nothing["status"] = "refused"
    assert build_submission(nothing, small_prices, TRADING, str(RUN_DATE)).orders == ()


# ---------------------------------------------------------------------------- reconciliation
def test_reconciliation_of_matching_orders_has_no_issue():
    mine = decided(
        [
            {
                "client_order_id": "a",
                "symbol": "AAPL",
                "side": "buy",
                "qty": 3.0,
                "status": APPROVED,
            },
            {
                "client_order_id": "z",
                "symbol": "NVDA",
                "side": "buy",
                "qty": 1.0,
                "status": "refused",
            },
        ]
    )
    theirs = reported(
        [{"client_order_id": "a", "symbol": "AAPL", "side": "buy", "qty": 3.0, "status": "filled"}]
    )
    out = reconcile_orders(mine, theirs)
    assert out["matches"].tolist() == [True]
    assert out["issue"].tolist() == [""]


def test_reconciliation_flags_lost_changed_rejected_and_unexpected_orders():
    mine = decided(
        [
            {"client_order_id": "lost", "symbol": "AAPL", "side": "buy", "qty": 3.0},
            {"client_order_id": "changed", "symbol": "MSFT", "side": "buy", "qty": 4.0},
            {"client_order_id": "rejected", "symbol": "NVDA", "side": "sell", "qty": 2.0},
            {"client_order_id": "fine", "symbol": "TSLA", "side": "sell", "qty": 1.0},
        ]
    ).assign(status=APPROVED)
    theirs = reported(
        [
            {"client_order_id": "changed", "symbol": "MSFT", "side": "buy", "qty": 2.0},
            {"client_order_id": "rejected", "symbol": "NVDA", "side": "sell", "qty": 2.0},
            {"client_order_id": "fine", "symbol": "TSLA", "side": "sell", "qty": 1.0},
            {"client_order_id": "extra", "symbol": "META", "side": "buy", "qty": 9.0},
        ]
    ).assign(status=["accepted", "rejected", "filled", "filled"])
    out = reconcile_orders(mine, theirs).set_index("client_order_id")
    assert out["matches"].to_dict() == {
        "lost": False,
        "changed": False,
        "rejected": False,
        "fine": True,
        "extra": False,
    }
    assert out.loc["lost", "issue"] == "decided but unknown to the broker"
    assert out.loc["changed", "issue"] == "broker status or quantity differs from the decision"
    assert out.loc["rejected", "issue"] == "broker status or quantity differs from the decision"
    assert out.loc["extra", "issue"] == "reported by the broker but not decided"
