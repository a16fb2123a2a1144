"""The trading rule: predictions + account -> orders, with every risk limit checked before an order
leaves. Pure; the daily trading pipeline and the backtest call the same :func:`decide_orders`.

Regression mode (the predecessor's rule, corrected): r = (prediction - last close) / last close;
every held position with r < -threshold is sold (all of them, not the first); the symbols with the
best r > +threshold are bought, and other holdings with a usable prediction are rotated out to
fund them (a holding without one is kept and reported). Classification mode uses predicted
directions instead of r. Sizing is all-in on the best, equal weight over the top k, or a maximum
weight per symbol; a pick that cannot be funded is recorded as refused, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import AccountSnapshot, OrderRequest
from stock_mlops.core.params import TradingParams

ORDER_COLUMNS = [
    "client_order_id",
    "team",
    "decision_date",
    C.TARGET_DATE,
    C.SYMBOL,
    "side",
    "qty",
    "reference_price",
    "predicted_return",
    "status",
    "reason",
]
APPROVED, REFUSED, ALREADY_SUBMITTED, SKIPPED = (
    "approved",
    "refused",
    "already_submitted",
    "skipped",
)


@dataclass(frozen=True)
class _Candidate:
    symbol: str
    side: str
    qty: float
    price: float
    score: float
    target_date: pd.Timestamp


def order_requests(orders: pd.DataFrame) -> list[OrderRequest]:
    """Rows of a decision table as broker-neutral order requests, in the table's order."""
    if orders.empty:
        return []
    columns = ["client_order_id", C.SYMBOL, "side", "qty", "reference_price"]
    dates = [pd.to_datetime(orders[c]).dt.date for c in ("decision_date", C.TARGET_DATE)]
    return [
        OrderRequest(
            client_order_id=cid,
            symbol=symbol,
            side=side,
            qty=float(qty),
            reference_price=float(price),
            decision_date=decided,
            target_date=target,
        )
        for cid, symbol, side, qty, price, decided, target in zip(
            *(orders[c] for c in columns), *dates, strict=True
        )
    ]


def client_order_id(team: str, decision_date: pd.Timestamp, symbol: str, side: str) -> str:
    """Deterministic id: the same team, day, symbol and side always give the same id."""
    return f"{team}-{pd.Timestamp(decision_date):%Y%m%d}-{symbol}-{side}"


def validate_predictions(
    predictions: pd.DataFrame,
    closes: pd.Series,
    decision_date: pd.Timestamp,
    max_price_deviation: float,
    next_session: pd.Timestamp | None = None,
    mode: str = "regression",
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Keeps predictions that are usable today; returns the others with their reason.

    A prediction is usable when it was made from ``decision_date``'s bar, is for the next trading
    session after it (stale-prediction guard), carries what ``mode`` acts on (a finite positive
    predicted price in regression mode, a direction in classification mode) and its last close
    agrees with the market's close within ``max_price_deviation``.

    Args:
        predictions: Prediction log rows (one per symbol; the last one wins on duplicates).
        closes: Market close per symbol on ``decision_date``.
        decision_date: The as-of trading date.
        max_price_deviation: Largest accepted ``|last_close / close - 1|``.
        next_session: The session after ``decision_date`` (computed when omitted).
        mode: ``regression`` or ``classification``.

    Returns:
        The usable rows, and a reason per symbol for every rejected one.
    """
    decision_date = pd.Timestamp(decision_date)
    expected = next_session or calendar.next_session(decision_date)
    usable, problems, _ = _validate(
        predictions, closes, decision_date, max_price_deviation, expected, mode
    )
    return usable, problems


def _validate(
    predictions: pd.DataFrame,
    closes: pd.Series,
    decision_date: pd.Timestamp,
    max_price_deviation: float,
    expected: pd.Timestamp,
    mode: str,
) -> tuple[pd.DataFrame, dict[str, str], np.ndarray]:
    """:func:`validate_predictions`, plus the market close of every usable row."""
    rows = predictions.drop_duplicates(C.SYMBOL, keep="last").reset_index(drop=True)
    if rows.empty:
        return rows, {}, np.empty(0)
    feature_date = _datetimes(rows["feature_date"])
    target_date = _datetimes(rows[C.TARGET_DATE])
    close = closes.reindex(rows[C.SYMBOL]).to_numpy(dtype=float)
    last = rows["last_close"].to_numpy(dtype=float)
    price = rows["prediction"].to_numpy(dtype=float)
    has_direction = rows["predicted_direction"].isin([C.UP, C.DOWN, C.FLAT]).to_numpy()
    # A NaN price with a valid direction must not pass in regression mode: its score would be
    # NaN, neither a loser nor a pick, and the symbol would be sold by rotation.
    unusable = ~has_direction if mode == "classification" else ~(np.isfinite(price) & (price > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.abs(last / close - 1)
    checks = [
        (feature_date != decision_date.to_datetime64(), "made from another day's bar"),
        (target_date != expected.to_datetime64(), "not for the next session"),
        (~(np.isfinite(close) & (close > 0)), "no valid market close"),
        (~(np.isfinite(last) & (last > 0)), "invalid last close in the prediction"),
        (~(deviation <= max_price_deviation), "last close far from the market close"),
        (unusable, "no usable prediction"),
    ]
    failed = np.zeros(len(rows), dtype=bool)
    problems: dict[str, str] = {}
    for mask, label in checks:
        new = mask & ~failed
        for i in np.flatnonzero(new):
            problems[rows[C.SYMBOL].iat[i]] = _explain(
                label, rows.iloc[i], close[i], decision_date, expected, mode
            )
        failed |= new
    if not failed.any():
        return rows, problems, close
    return rows[~failed].reset_index(drop=True), problems, close[~failed]


def _datetimes(column: pd.Series) -> np.ndarray:
    # pd.to_datetime costs a millisecond even on a datetime column: the backtest calls this daily.
    if pd.api.types.is_datetime64_dtype(column.dtype):
        return column.to_numpy()
    return pd.to_datetime(column).to_numpy()


def _explain(
    label: str,
    row: pd.Series,
    close: float,
    decision_date: pd.Timestamp,
    expected: pd.Timestamp,
    mode: str,
) -> str:
    details = {
        "made from another day's bar": (
            f"prediction made from {pd.Timestamp(row['feature_date']).date()}, "
            f"not {decision_date.date()}"
        ),
        "not for the next session": (
            f"prediction is for {pd.Timestamp(row[C.TARGET_DATE]).date()}, not the next "
            f"session {expected.date()}"
        ),
        "no valid market close": f"no valid market close on {decision_date.date()} ({close})",
        "last close far from the market close": (
            f"prediction's last close {row['last_close']:.4f} is far from the market close "
            f"{close:.4f}"
        ),
        "no usable prediction": (
            f"predicted direction {row['predicted_direction']!r} is not up, down or flat"
            if mode == "classification"
            else f"predicted price {row['prediction']} is not a positive number"
        ),
    }
    return details.get(label, label)


def decide_orders(
    predictions: pd.DataFrame,
    closes: pd.Series,
    account: AccountSnapshot,
    params: TradingParams,
    team: str,
    decision_date: pd.Timestamp,
    next_session: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Decides today's orders.

    Args:
        predictions: One row per symbol from the prediction log (``symbol, feature_date,
            target_date, last_close, prediction, predicted_direction``).
        closes: Market close per symbol on ``decision_date`` (the authoritative last close).
        account: The broker's snapshot (cash, positions, clock, known client order ids).
        params: Trading parameters.
        team: Team name (part of every client order id).
        decision_date: The as-of trading date.
        next_session: The session after ``decision_date`` (computed when omitted).

    Returns:
        Every order considered, approved or not, with ``status`` and ``reason``.
    """
    decision_date = pd.Timestamp(decision_date)
    target_session = next_session or calendar.next_session(decision_date)
    usable, problems, market = _validate(
        predictions,
        closes,
        decision_date,
        params.risk.max_price_deviation,
        target_session,
        params.mode,
    )
    scores = _scores(usable, market, params)
    held = {s: p for s, p in account.positions.items() if p.qty > 0}
    price = dict(zip(usable[C.SYMBOL].tolist(), market.tolist(), strict=True))
    for symbol, position in held.items():
        price.setdefault(symbol, position.market_price)

    losers = [s for s in held if s in scores and scores[s] < -params.threshold]
    picks = _picks(scores, params)
    # Only symbols with a usable prediction are rotated out: a held symbol the model said nothing
    # usable about is kept (and reported below), never sold blind.
    rotated = (
        [s for s in held if s in scores and s not in losers and s not in picks] if picks else []
    )
    candidates = [
        _Candidate(s, "sell", held[s].qty, price[s], scores[s], target_session)
        for s in losers + rotated
    ]
    buys, unfunded = _size_buys(
        picks, scores, held, price, account, candidates, params, target_session
    )
    candidates += buys

    unpredicted = sorted(set(held) - set(predictions[C.SYMBOL]))
    problems.update(
        {s: f"no prediction for {decision_date.date()}; position kept" for s in unpredicted}
    )
    rows = [_row(c, team, decision_date, APPROVED, "") for c in candidates]
    rows += [_row(c, team, decision_date, REFUSED, why) for c, why in unfunded]
    rows += [
        {**_empty_row(team, decision_date, target_session, s), "status": SKIPPED, "reason": why}
        for s, why in problems.items()
    ]
    _apply_risk_limits(rows, account, params, decision_date, target_session)
    return _orders_frame(rows)


def _orders_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a frame with fixed dtypes, also when there are no rows.

    Built column by column: the backtest builds one frame per simulated day, and
    ``DataFrame(records).astype(...)`` costs several times more.
    """
    dates = ("decision_date", C.TARGET_DATE)
    numbers = ("qty", "reference_price", "predicted_return")
    columns: dict[str, np.ndarray] = {}
    for name in ORDER_COLUMNS:
        values = [row[name] for row in rows]
        if name in dates:
            stamps = [pd.Timestamp(v).to_datetime64() for v in values]
            columns[name] = np.array(stamps, dtype="datetime64[ns]")
        elif name in numbers:
            columns[name] = np.array(values, dtype=float)
        else:
            columns[name] = np.array(values, dtype=object)
    return pd.DataFrame(columns, columns=ORDER_COLUMNS, copy=False)


def _scores(usable: pd.DataFrame, market: np.ndarray, params: TradingParams) -> dict[str, float]:
    """Predicted return (regression) or direction as +-1/0 (classification) per usable symbol."""
    symbols = usable[C.SYMBOL].tolist()
    if params.mode == "classification":
        mapping = {C.UP: 1.0, C.DOWN: -1.0, C.FLAT: 0.0}
        # A direction call carries no size: +-1 is beyond any threshold below 1.
        values = [mapping[d] for d in usable["predicted_direction"]]
    else:
        values = (usable["prediction"].to_numpy(dtype=float) / market - 1).tolist()
    return dict(zip(symbols, values, strict=True))


def _picks(scores: dict[str, float], params: TradingParams) -> list[str]:
    gainers = [(s, r) for s, r in scores.items() if r > params.threshold]
    # Ties broken by symbol so that the same inputs always give the same orders.
    ranked = sorted(gainers, key=lambda item: (-item[1], item[0]))
    limit = 1 if params.sizing == "all_in" else params.top_k
    if params.sizing == "max_weight":
        limit = len(ranked)
    return [symbol for symbol, _ in ranked[:limit]]


def _size_buys(
    picks: list[str],
    scores: dict[str, float],
    held: dict,
    price: dict[str, float],
    account: AccountSnapshot,
    sells: list[_Candidate],
    params: TradingParams,
    target_session: pd.Timestamp,
) -> tuple[list[_Candidate], list[tuple[_Candidate, str]]]:
    """Sizes the buys; a pick that gets no shares is returned with the reason why."""
    if not picks:
        return [], []
    slippage = params.local.slippage_bps / 10_000
    commission = params.local.commission_bps / 10_000
    # Costs are charged on every fill: sells bring in less than qty x price, buys cost more.
    sell_factor = (1 - slippage) * (1 - commission)
    buy_factor = (1 + slippage) * (1 + commission)
    equity = account.equity
    proceeds = sum(c.qty * c.price for c in sells) * sell_factor
    buffer = params.risk.min_cash_buffer * equity
    cash = account.cash + proceeds - buffer
    per_pick = {
        "all_in": 1.0,
        # 1/k of equity per pick even when fewer than k symbols qualify: the rest stays in cash.
        "equal_weight": 1.0 / params.top_k,
        "max_weight": params.risk.max_weight_per_symbol,
    }[params.sizing]
    weight = min(per_pick, params.risk.max_weight_per_symbol)
    buys, unfunded = [], []
    for symbol in picks:
        current = held[symbol].qty * price[symbol] if symbol in held else 0.0
        room = weight * equity - current
        budget = min(max(room, 0.0), max(cash, 0.0))
        qty = _quantity(budget / (price[symbol] * buy_factor), params.fractional_shares)
        candidate = _Candidate(symbol, "buy", qty, price[symbol], scores[symbol], target_session)
        if qty > 0:
            cash -= qty * price[symbol] * buy_factor
            buys.append(candidate)
            continue
        if room <= 0:
            why = (
                f"already holds its target weight {weight:g} of equity "
                f"(max_weight_per_symbol={params.risk.max_weight_per_symbol:g})"
            )
        elif cash <= 0:
            why = (
                f"no cash left after earlier orders and the min_cash_buffer="
                f"{params.risk.min_cash_buffer:g} ({buffer:.2f})"
            )
        else:
            why = f"budget {budget:.2f} buys less than one share at {price[symbol]:.4f}"
        unfunded.append((candidate, why))
    return buys, unfunded


def _quantity(raw: float, fractional: bool) -> float:
    if fractional:
        return math.floor(raw * 10_000) / 10_000
    return float(math.floor(raw + 1e-9))


def _apply_risk_limits(
    rows: list[dict[str, Any]],
    account: AccountSnapshot,
    params: TradingParams,
    decision_date: pd.Timestamp,
    target_session: pd.Timestamp,
) -> None:
    """Checks every approved row against the risk limits; marks the refused ones in place.

    The first failing check gives the reason. Plain Python on a handful of rows: the backtest
    runs this once per simulated day.
    """
    risk = params.risk
    known = account.known_client_order_ids
    execution = pd.Timestamp(account.clock.execution_session)
    clock_problem = (
        ""
        if execution in (target_session, decision_date)
        else (
            f"broker clock: orders would execute on {execution.date()}, but the predictions "
            f"are for {target_session.date()}"
        )
    )
    equity = account.equity
    held_weight = (
        {s: p.market_value / equity for s, p in account.positions.items()} if equity > 0 else {}
    )
    still = []
    for row in rows:
        if row["status"] != APPROVED:
            continue
        if row["client_order_id"] in known:
            row["status"] = ALREADY_SUBMITTED
            row["reason"] = "the broker already has this client order id"
            continue
        price = row["reference_price"]
        if risk.kill_switch:
            why = "kill switch is on"
        elif clock_problem:
            why = clock_problem
        elif (
            equity > 0
            and row["side"] == "buy"
            and row["qty"] * price / equity + held_weight.get(row[C.SYMBOL], 0.0)
            > risk.max_weight_per_symbol + 1e-9
        ):
            why = f"position would exceed max_weight_per_symbol={risk.max_weight_per_symbol}"
        elif not (math.isfinite(price) and price > 0):
            why = "reference price is not a positive number"
        else:
            still.append(row)
            continue
        row["status"], row["reason"] = REFUSED, why

    # Sells first (they free cash and cut predicted losses), the worst predicted loss first;
    # then buys, the best predicted gain first; ties by symbol so the cut is deterministic.
    still.sort(
        key=lambda r: (
            (0, r["predicted_return"], r[C.SYMBOL])
            if r["side"] == "sell"
            else (1, -r["predicted_return"], r[C.SYMBOL])
        )
    )
    for row in still[risk.max_orders_per_run :]:
        row["status"] = REFUSED
        row["reason"] = f"more than max_orders_per_run={risk.max_orders_per_run}"


def _row(c: _Candidate, team: str, decision_date: pd.Timestamp, status: str, reason: str) -> dict:
    return {
        "client_order_id": client_order_id(team, decision_date, c.symbol, c.side),
        "team": team,
        "decision_date": decision_date,
        C.TARGET_DATE: c.target_date,
        C.SYMBOL: c.symbol,
        "side": c.side,
        "qty": float(c.qty),
        "reference_price": float(c.price),
        "predicted_return": float(c.score),
        "status": status,
        "reason": reason,
    }


def _empty_row(team: str, decision_date: pd.Timestamp, target: pd.Timestamp, symbol: str) -> dict:
    return {
        "client_order_id": client_order_id(team, decision_date, symbol, "none"),
        "team": team,
        "decision_date": decision_date,
        C.TARGET_DATE: target,
        C.SYMBOL: symbol,
        "side": "none",
        "qty": 0.0,
        "reference_price": math.nan,
        "predicted_return": math.nan,
        "status": SKIPPED,
        "reason": "",
    }
