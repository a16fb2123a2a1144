"""The trading rule (:func:`decide_orders`) and its risk limits, on hand-made accounts."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest

from stock_mlops.core.broker_types import AccountSnapshot, Clock, Position
from stock_mlops.core.params import TradingParams
from stock_mlops.core.strategy import (
    ALREADY_SUBMITTED,
    APPROVED,
    REFUSED,
    SKIPPED,
    client_order_id,
    decide_orders,
    validate_predictions,
)

DAY = pd.Timestamp("2023-06-01")  # a Thursday
NEXT = pd.Timestamp("2023-06-02")
TEAM = "red"


def params(**overrides: Any) -> TradingParams:
    """Trading parameters without costs, so that sizes are easy to compute by hand."""
    risk = overrides.pop("risk", {})
    local = {
        "fill_at": "close",
        "allow_close_fill": True,
        "commission_bps": 0.0,
        "slippage_bps": 0.0,
    }
    local.update(overrides.pop("local", {}))
    return TradingParams.parse({**overrides, "risk": risk, "local": local})


def preds(
    returns: dict[str, float],
    closes: dict[str, float],
    feature_date: pd.Timestamp = DAY,
    target_date: pd.Timestamp = NEXT,
) -> pd.DataFrame:
    """Prediction rows whose predicted return over the close is ``returns[symbol]``."""
    rows = []
    for symbol, r in returns.items():
        close = closes[symbol]
        direction = "up" if r > 0 else "down" if r < 0 else "flat"
        rows.append(
            {
                "symbol": symbol,
                "feature_date": feature_date,
                "target_date": target_date,
                "last_close": close,
                "prediction": close * (1 + r),
                "predicted_direction": direction,
            }
        )
    columns = ["symbol", "feature_date", "target_date", "last_close", "prediction"]
    return pd.DataFrame(rows, columns=[*columns, "predicted_direction"])


def account(
    cash: float,
    holdings: dict[str, float] | None = None,
    closes: dict[str, float] | None = None,
    execution: pd.Timestamp = NEXT,
    known: frozenset[str] = frozenset(),
) -> AccountSnapshot:
    """An account holding ``holdings`` (symbol -> qty) marked at ``closes``."""
    closes = closes or {}
    positions = {
        s: Position(symbol=s, qty=q, avg_price=closes.get(s, 1.0), market_price=closes.get(s, 1.0))
        for s, q in (holdings or {}).items()
    }
    clock = Clock(
        timestamp=dt.datetime(2023, 6, 1, 21, tzinfo=dt.UTC),
        is_open=True,
        execution_session=execution.date(),
    )
    return AccountSnapshot("local", cash, positions, clock, known)


def decide(
    returns: dict[str, float],
    closes: dict[str, float],
    acct: AccountSnapshot,
    trading: TradingParams | None = None,
    predictions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    frame = preds(returns, closes) if predictions is None else predictions
    return decide_orders(frame, pd.Series(closes), acct, trading or params(), TEAM, DAY, NEXT)


def approved(orders: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Approved orders as ``{(symbol, side): qty}``."""
    ok = orders[orders["status"] == APPROVED]
    return {(r.symbol, r.side): r.qty for r in ok.itertuples()}


def reason(orders: pd.DataFrame, symbol: str, side: str | None = None) -> tuple[str, str]:
    rows = orders[orders["symbol"] == symbol]
    if side is not None:
        rows = rows[rows["side"] == side]
    assert len(rows) == 1, rows
    return rows["status"].iat[0], rows["reason"].iat[0]


CLOSES = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0, "DDD": 10.0}


# ---------------------------------------------------------------------------- the rule itself
def test_sells_every_loser_not_only_the_first():
    acct = account(0.0, {"AAA": 10, "BBB": 20, "CCC": 5}, CLOSES)
    orders = decide({"AAA": -0.02, "BBB": -0.03, "CCC": -0.001}, CLOSES, acct)
    assert approved(orders) == {("AAA", "sell"): 10, ("BBB", "sell"): 20}


def test_keeps_holdings_inside_the_band_when_nothing_is_worth_buying():
    acct = account(1_000.0, {"AAA": 10, "BBB": 20}, CLOSES)
    orders = decide({"AAA": 0.004, "BBB": -0.004, "CCC": 0.005}, CLOSES, acct)
    # 0.005 is not above a threshold of 0.005: no pick, so no rotation either.
    assert approved(orders) == {}
    assert orders.empty


def test_rotates_holdings_into_the_best_predicted_gain():
    acct = account(30.0, {"AAA": 10, "CCC": 10}, CLOSES)
    orders = decide({"AAA": 0.001, "BBB": 0.03, "CCC": 0.02, "DDD": -0.001}, CLOSES, acct)
    # Cash 30 + AAA 1000 + CCC 200 = 1230 -> 24 BBB at 50 (all in, whole shares).
    assert approved(orders) == {("AAA", "sell"): 10, ("CCC", "sell"): 10, ("BBB", "buy"): 24}


def test_keeps_the_held_pick_and_tops_it_up():
    acct = account(500.0, {"BBB": 10}, CLOSES)
    orders = decide({"BBB": 0.03, "CCC": 0.01}, CLOSES, acct)
    assert approved(orders) == {("BBB", "buy"): 10}


def test_all_in_buys_the_best_with_all_cash():
    orders = decide({"BBB": 0.02, "CCC": 0.03}, {"BBB": 50.0, "CCC": 33.0}, account(10_000.0))
    assert approved(orders) == {("CCC", "buy"): 303}  # floor(10000 / 33)


def test_equal_weight_spreads_equity_over_the_top_k():
    trading = params(sizing="equal_weight", top_k=2)
    orders = decide({"AAA": 0.01, "BBB": 0.03, "CCC": 0.02}, CLOSES, account(10_000.0), trading)
    assert approved(orders) == {("BBB", "buy"): 100, ("CCC", "buy"): 250}


def test_max_weight_buys_every_gainer_at_the_cap_until_cash_runs_out():
    trading = params(sizing="max_weight", risk={"max_weight_per_symbol": 0.3})
    returns = {"AAA": 0.04, "BBB": 0.03, "CCC": 0.02, "DDD": 0.01}
    orders = decide(returns, CLOSES, account(10_000.0), trading)
    assert approved(orders) == {
        ("AAA", "buy"): 30,
        ("BBB", "buy"): 60,
        ("CCC", "buy"): 150,
        ("DDD", "buy"): 100,  # what is left: 1000
    }


def test_all_in_is_capped_by_max_weight_per_symbol():
    trading = params(risk={"max_weight_per_symbol": 0.5})
    orders = decide({"BBB": 0.03}, CLOSES, account(10_000.0), trading)
    assert approved(orders) == {("BBB", "buy"): 100}


@pytest.mark.parametrize(("fractional", "qty"), [(False, 303.0), (True, 303.0303)])
def test_whole_or_fractional_shares(fractional: bool, qty: float):
    orders = decide(
        {"CCC": 0.03}, {"CCC": 33.0}, account(10_000.0), params(fractional_shares=fractional)
    )
    assert approved(orders) == {("CCC", "buy"): qty}


def test_sizing_leaves_room_for_costs_on_both_legs():
    trading = params(local={"slippage_bps": 10.0, "commission_bps": 10.0}, fractional_shares=True)
    acct = account(0.0, {"AAA": 10}, CLOSES)
    orders = decide({"AAA": -0.01, "BBB": 0.02}, CLOSES, acct, trading)
    cash_after_sell = 10 * 100 * 0.999 * 0.999
    bought = approved(orders)[("BBB", "buy")]
    assert bought * 50 * 1.001 * 1.001 <= cash_after_sell
    assert bought == pytest.approx(cash_after_sell / (50 * 1.001 * 1.001), abs=1e-4)


def test_ties_are_broken_by_symbol_whatever_the_row_order():
    returns = {"DDD": 0.02, "BBB": 0.02, "CCC": 0.02}
    closes = {"BBB": 10.0, "CCC": 10.0, "DDD": 10.0}
    forward = decide(returns, closes, account(1_000.0))
    backward = decide(dict(reversed(returns.items())), closes, account(1_000.0))
    assert approved(forward) == approved(backward) == {("BBB", "buy"): 100}


def test_the_same_inputs_always_give_the_same_orders():
    acct = account(100.0, {"AAA": 10, "DDD": 7}, CLOSES)
    returns = {"AAA": -0.02, "BBB": 0.03, "CCC": 0.03, "DDD": 0.001}
    first = decide(returns, CLOSES, acct)
    again = decide(returns, CLOSES, acct, predictions=preds(returns, CLOSES).iloc[::-1])
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize(
    ("predicted", "threshold", "buys"),
    [
        (0.01, "0.005", True),  # as strings, "0.01" < "0.005": the predecessor's bug
        (0.0045, 0.004, True),
        (0.0045, 0.005, False),
        (0.004, 0.0045, False),
    ],
)
def test_threshold_is_compared_as_a_number(predicted: float, threshold: Any, buys: bool):
    orders = decide({"BBB": predicted}, CLOSES, account(1_000.0), params(threshold=threshold))
    assert (("BBB", "buy") in approved(orders)) is buys


def test_classification_mode_acts_on_the_predicted_direction():
    acct = account(0.0, {"AAA": 10, "CCC": 5}, CLOSES)
    frame = preds({"AAA": 0.0, "BBB": 0.0, "CCC": 0.0}, CLOSES).assign(
        prediction=math.nan, predicted_direction=["down", "up", "flat"]
    )
    orders = decide({}, CLOSES, acct, params(mode="classification"), predictions=frame)
    # AAA called down: sold; CCC flat: rotated into the pick BBB; proceeds 1100 -> 22 BBB.
    assert approved(orders) == {("AAA", "sell"): 10, ("CCC", "sell"): 5, ("BBB", "buy"): 22}


def test_classification_mode_skips_a_row_without_a_direction():
    frame = preds({"BBB": 0.05}, CLOSES).assign(predicted_direction="nan")
    orders = decide({}, CLOSES, account(1_000.0), params(mode="classification"), predictions=frame)
    assert approved(orders) == {}
    status, why = reason(orders, "BBB")
    assert status == SKIPPED and "not up, down or flat" in why


# ------------------------------------------------------------------------------ bad predictions
def test_stale_wrong_date_nan_and_negative_predictions_are_skipped_with_a_reason():
    frame = pd.concat(
        [
            preds({"AAA": 0.05}, CLOSES, feature_date=DAY - pd.Timedelta(days=1)),
            preds({"BBB": 0.05}, CLOSES, target_date=NEXT + pd.Timedelta(days=3)),
            preds({"CCC": 0.05}, CLOSES).assign(prediction=math.nan),
            preds({"DDD": 0.05}, CLOSES).assign(prediction=-1.0),
            preds({"EEE": 0.01}, {"EEE": 10.0}),
        ],
        ignore_index=True,
    )
    closes = {**CLOSES, "EEE": 10.0}
    orders = decide({}, closes, account(1_000.0), predictions=frame)
    assert approved(orders) == {("EEE", "buy"): 100}
    assert reason(orders, "AAA") == (SKIPPED, "prediction made from 2023-05-31, not 2023-06-01")
    assert reason(orders, "BBB") == (
        SKIPPED,
        "prediction is for 2023-06-05, not the next session 2023-06-02",
    )
    assert reason(orders, "CCC") == (SKIPPED, "predicted price nan is not a positive number")
    assert reason(orders, "DDD") == (SKIPPED, "predicted price -1.0 is not a positive number")


def test_prices_that_are_nan_negative_or_far_from_the_close_are_skipped():
    frame = preds({"AAA": 0.05, "BBB": 0.05, "CCC": 0.05}, CLOSES).assign(
        last_close=[100.0, 80.0, -20.0]
    )
    closes = {"AAA": math.nan, "BBB": 50.0, "CCC": 20.0}
    orders = decide({}, closes, account(1_000.0), predictions=frame)
    assert approved(orders) == {}
    assert reason(orders, "AAA") == (SKIPPED, "no valid market close on 2023-06-01 (nan)")
    assert reason(orders, "BBB")[1] == (
        "prediction's last close 80.0000 is far from the market close 50.0000"
    )
    assert reason(orders, "CCC")[1] == "invalid last close in the prediction"


def test_a_held_symbol_without_a_prediction_is_kept_and_reported():
    acct = account(0.0, {"AAA": 10, "DDD": 3}, CLOSES)
    orders = decide({"BBB": 0.03}, CLOSES, acct)
    # AAA and DDD have no prediction: neither is rotated into BBB, so nothing can be bought.
    assert approved(orders) == {}
    assert reason(orders, "AAA") == (SKIPPED, "no prediction for 2023-06-01; position kept")
    assert reason(orders, "DDD")[0] == SKIPPED


def test_a_held_symbol_with_an_unusable_prediction_is_not_sold():
    acct = account(0.0, {"AAA": 10}, CLOSES)
    frame = pd.concat(
        [preds({"AAA": 0.0}, CLOSES).assign(prediction=math.nan), preds({"BBB": 0.03}, CLOSES)]
    )
    orders = decide({}, CLOSES, acct, predictions=frame)
    assert ("AAA", "sell") not in approved(orders)
    assert reason(orders, "AAA")[0] == SKIPPED


def test_validate_predictions_keeps_good_rows_and_drops_duplicates():
    frame = pd.concat([preds({"AAA": 0.5}, CLOSES), preds({"AAA": 0.01, "BBB": 0.0}, CLOSES)])
    usable, problems = validate_predictions(frame, pd.Series(CLOSES), DAY, 0.2, NEXT)
    assert problems == {}
    assert list(usable["symbol"]) == ["AAA", "BBB"]
    assert usable["prediction"].iat[0] == pytest.approx(101.0)  # the last row wins


def test_validate_predictions_of_nothing_is_nothing():
    usable, problems = validate_predictions(preds({}, {}), pd.Series(CLOSES), DAY, 0.2, NEXT)
    assert usable.empty and problems == {}


# ---------------------------------------------------------------------------------- risk limits
def test_kill_switch_refuses_everything():
    acct = account(1_000.0, {"AAA": 10}, CLOSES)
    orders = decide({"AAA": -0.02, "BBB": 0.03}, CLOSES, acct, params(risk={"kill_switch": True}))
    assert len(orders) == 2
    assert set(orders["status"]) == {REFUSED}
    assert set(orders["reason"]) == {"kill switch is on"}


def test_broker_clock_for_another_session_refuses_everything():
    acct = account(1_000.0, {"AAA": 10}, CLOSES, execution=pd.Timestamp("2023-06-05"))
    orders = decide({"AAA": -0.02, "BBB": 0.03}, CLOSES, acct)
    assert set(orders["status"]) == {REFUSED}
    assert orders["reason"].iat[0] == (
        "broker clock: orders would execute on 2023-06-05, but the predictions are for 2023-06-02"
    )


def test_broker_clock_filling_today_at_the_close_is_accepted():
    orders = decide({"BBB": 0.03}, CLOSES, account(1_000.0, execution=DAY))
    assert approved(orders) == {("BBB", "buy"): 20}


def test_orders_beyond_max_orders_per_run_are_refused_sells_first_worst_loss_first():
    acct = account(0.0, {"AAA": 1, "BBB": 1, "CCC": 1}, CLOSES)
    returns = {"AAA": -0.01, "BBB": -0.05, "CCC": 0.001, "DDD": 0.02}
    orders = decide(returns, CLOSES, acct, params(risk={"max_orders_per_run": 2}))
    assert approved(orders) == {("BBB", "sell"): 1, ("AAA", "sell"): 1}
    for symbol, side in (("CCC", "sell"), ("DDD", "buy")):
        assert reason(orders, symbol, side) == (REFUSED, "more than max_orders_per_run=2")


def test_zero_max_orders_refuses_every_order():
    orders = decide({"BBB": 0.03}, CLOSES, account(1_000.0), params(risk={"max_orders_per_run": 0}))
    assert reason(orders, "BBB") == (REFUSED, "more than max_orders_per_run=0")


def test_a_pick_already_at_max_weight_is_refused_with_the_reason():
    acct = account(400.0, {"BBB": 12}, CLOSES)  # 600 of 1000 in BBB
    orders = decide({"BBB": 0.03}, CLOSES, acct, params(risk={"max_weight_per_symbol": 0.5}))
    status, why = reason(orders, "BBB")
    assert status == REFUSED
    assert "max_weight_per_symbol=0.5" in why


def test_min_cash_buffer_is_kept_when_buying():
    trading = params(fractional_shares=True, risk={"min_cash_buffer": 0.1})
    orders = decide({"BBB": 0.03}, CLOSES, account(1_000.0), trading)
    assert approved(orders) == {("BBB", "buy"): 18.0}  # 900 / 50


def test_a_buy_that_would_break_the_cash_buffer_is_refused_with_the_reason():
    acct = account(50.0, {"AAA": 9}, CLOSES)  # cash is 5% of equity
    trading = params(risk={"min_cash_buffer": 0.1})
    orders = decide({"AAA": 0.01, "BBB": 0.03}, CLOSES, acct, trading)
    # AAA is rotated out: 900 + 50 - 95 buffer -> 17 BBB; without the sale no cash is left.
    assert approved(orders) == {("AAA", "sell"): 9, ("BBB", "buy"): 17}
    alone = decide({"BBB": 0.03}, CLOSES, acct, trading)
    status, why = reason(alone, "BBB")
    assert status == REFUSED and "min_cash_buffer=0.1" in why


def test_a_budget_below_one_share_is_refused_with_the_reason():
    orders = decide({"AAA": 0.03}, CLOSES, account(99.0))
    assert reason(orders, "AAA") == (REFUSED, "budget 99.00 buys less than one share at 100.0000")


# ------------------------------------------------------------------------------- idempotency
def test_client_order_ids_are_deterministic():
    first = client_order_id("red", pd.Timestamp("2023-06-01"), "AAPL", "buy")
    assert first == client_order_id("red", dt.date(2023, 6, 1), "AAPL", "buy")
    assert first == "red-20230601-AAPL-buy"
    assert first != client_order_id("blue", DAY, "AAPL", "buy")
    assert first != client_order_id("red", DAY, "AAPL", "sell")


def test_orders_the_broker_already_knows_are_not_approved_again():
    acct = account(1_000.0, {"AAA": 10}, CLOSES)
    returns = {"AAA": -0.02, "BBB": 0.03}
    first = decide(returns, CLOSES, acct)
    known = frozenset(first["client_order_id"])
    again = decide(returns, CLOSES, account(1_000.0, {"AAA": 10}, CLOSES, known=known))
    assert approved(again) == {}
    assert set(again["status"]) == {ALREADY_SUBMITTED}
    assert list(again["client_order_id"]) == list(first["client_order_id"])


def test_no_predictions_no_orders():
    orders = decide({}, CLOSES, account(1_000.0, {"AAA": 1}, CLOSES), predictions=preds({}, {}))
    assert approved(orders) == {}
    assert reason(orders, "AAA")[0] == SKIPPED
