"""The trading rule: predictions + account -> orders, with every risk limit checked before an order
leaves. Pure; the daily trading pipeline and the backtest call the same :func:`decide_orders`.

Regression mode (the predecessor's rule, corrected): r = (prediction - last close) / last close;
every held position with r < -threshold is sold (all of them, not the first); the symbols with the
best r > +threshold are bought, and other holdings are rotated out to fund them. Classification
mode uses predicted directions instead of r. Sizing is all-in on the best, equal weight over the
top k, or a maximum weight per symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stock_mlops.brokers.base import AccountSnapshot
from stock_mlops.core import calendar
from stock_mlops.core import columns as C
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


def client_order_id(team: str, decision_date: pd.Timestamp, symbol: str, side: str) -> str:
    """Deterministic id: the same team, day, symbol and side always give the same id."""
    return f"{team}-{pd.Timestamp(decision_date):%Y%m%d}-{symbol}-{side}"


def validate_predictions(
    predictions: pd.DataFrame,
    closes: pd.Series,
    decision_date: pd.Timestamp,
    max_price_deviation: float,
    next_session: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Keeps predictions that are usable today; returns the others with their reason.

    A prediction is usable when it was made from ``decision_date``'s bar, is for the next trading
    session after it (stale-prediction guard), is a finite positive price (or a direction) and its
    last close agrees with the market's close within ``max_price_deviation``.
    """
    decision_date = pd.Timestamp(decision_date)
    expected = next_session or calendar.next_session(decision_date)
    rows = predictions.drop_duplicates(C.SYMBOL, keep="last").reset_index(drop=True)
    if rows.empty:
        return rows, {}
    feature_date = pd.to_datetime(rows["feature_date"])
    target_date = pd.to_datetime(rows[C.TARGET_DATE])
    close = closes.reindex(rows[C.SYMBOL]).to_numpy(dtype=float)
    last = rows["last_close"].to_numpy(dtype=float)
    price = rows["prediction"].to_numpy(dtype=float)
    has_price = np.isfinite(price)
    has_direction = rows["predicted_direction"].isin([C.UP, C.DOWN, C.FLAT]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = np.abs(last / close - 1)
    checks = [
        (feature_date.to_numpy() != decision_date.to_datetime64(), "made from another day's bar"),
        (target_date.to_numpy() != expected.to_datetime64(), "not for the next session"),
        (~(np.isfinite(close) & (close > 0)), "no valid market close"),
        (~(np.isfinite(last) & (last > 0)), "invalid last close in the prediction"),
        (~(deviation <= max_price_deviation), "last close far from the market close"),
        (has_price & ~(price > 0), "non-positive predicted price"),
        (~has_price & ~has_direction, "neither a predicted price nor a direction"),
    ]
    failed = np.zeros(len(rows), dtype=bool)
    problems: dict[str, str] = {}
    for mask, label in checks:
        new = mask & ~failed
        for i in np.flatnonzero(new):
            problems[rows[C.SYMBOL].iat[i]] = _explain(
                label, rows.iloc[i], close[i], decision_date, expected
            )
        failed |= new
    return rows[~failed].reset_index(drop=True), problems


def _explain(
    label: str,
    row: pd.Series,
    close: float,
    decision_date: pd.Timestamp,
    expected: pd.Timestamp,
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
        "non-positive predicted price": f"non-positive predicted price {row['prediction']}",
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
    usable, problems = validate_predictions(
        predictions, closes, decision_date, params.risk.max_price_deviation, target_session
    )
    scores = _scores(usable, closes, params)
    held = {s: p for s, p in account.positions.items() if p.qty > 0}
    price = {s: float(closes[s]) for s in scores.index}
    for symbol, position in held.items():
        price.setdefault(symbol, position.market_price)

    losers = [s for s in held if s in scores.index and scores[s] < -params.threshold]
    picks = _picks(scores, params)
    rotated = [s for s in held if s not in losers and s not in picks] if picks else []
    candidates = [
        _Candidate(s, "sell", held[s].qty, price[s], scores.get(s, 0.0), target_session)
        for s in losers + rotated
    ]
    candidates += _size_buys(
        picks, scores, held, price, account, candidates, params, target_session
    )

    unpredicted = sorted(set(held) - set(predictions[C.SYMBOL]))
    problems.update(
        {s: f"no prediction for {decision_date.date()}; position kept" for s in unpredicted}
    )
    rows = [_row(c, team, decision_date, APPROVED, "") for c in candidates]
    rows += [
        {**_empty_row(team, decision_date, target_session, s), "status": SKIPPED, "reason": why}
        for s, why in problems.items()
    ]
    orders = pd.DataFrame(rows, columns=ORDER_COLUMNS).astype(
        {"qty": float, "reference_price": float, "predicted_return": float}
    )
    return _apply_risk_limits(orders, account, params, decision_date, target_session)


def _scores(usable: pd.DataFrame, closes: pd.Series, params: TradingParams) -> pd.Series:
    if usable.empty:
        return pd.Series(dtype=float)
    index = usable[C.SYMBOL]
    if params.mode == "classification":
        mapping = {C.UP: 1.0, C.DOWN: -1.0, C.FLAT: 0.0}
        # A direction call carries no size: +-1 is beyond any threshold below 1.
        return pd.Series(usable["predicted_direction"].map(mapping).to_numpy(), index=index)
    market = closes.reindex(index).to_numpy(dtype=float)
    return pd.Series(usable["prediction"].to_numpy(dtype=float) / market - 1, index=index)


def _picks(scores: pd.Series, params: TradingParams) -> list[str]:
    gainers = scores[scores > params.threshold]
    # Ties broken by symbol so that the same inputs always give the same orders.
    ranked = sorted(gainers.items(), key=lambda item: (-item[1], item[0]))
    limit = 1 if params.sizing == "all_in" else params.top_k
    if params.sizing == "max_weight":
        limit = len(ranked)
    return [symbol for symbol, _ in ranked[:limit]]


def _size_buys(
    picks: list[str],
    scores: pd.Series,
    held: dict,
    price: dict[str, float],
    account: AccountSnapshot,
    sells: list[_Candidate],
    params: TradingParams,
    target_session: pd.Timestamp,
) -> list[_Candidate]:
    if not picks:
        return []
    equity = account.equity
    proceeds = sum(c.qty * c.price for c in sells)
    cash = account.cash + proceeds - params.risk.min_cash_buffer * equity
    per_pick = {
        "all_in": 1.0,
        "equal_weight": 1.0 / len(picks),
        "max_weight": params.risk.max_weight_per_symbol,
    }[params.sizing]
    weight = min(per_pick, params.risk.max_weight_per_symbol)
    # Costs are charged on top of the price: size so that the fill stays affordable.
    cost_factor = 1 + (params.local.slippage_bps + params.local.commission_bps) / 10_000
    buys = []
    for symbol in picks:
        current = held[symbol].qty * price[symbol] if symbol in held else 0.0
        budget = min(max(weight * equity - current, 0.0), max(cash, 0.0))
        qty = _quantity(budget / (price[symbol] * cost_factor), params.fractional_shares)
        if qty <= 0:
            continue
        cash -= qty * price[symbol] * cost_factor
        buys.append(_Candidate(symbol, "buy", qty, price[symbol], scores[symbol], target_session))
    return buys


def _quantity(raw: float, fractional: bool) -> float:
    if fractional:
        return math.floor(raw * 10_000) / 10_000
    return float(math.floor(raw + 1e-9))


def _apply_risk_limits(
    orders: pd.DataFrame,
    account: AccountSnapshot,
    params: TradingParams,
    decision_date: pd.Timestamp,
    target_session: pd.Timestamp,
) -> pd.DataFrame:
    approved = orders["status"] == APPROVED
    refusals = pd.Series("", index=orders.index)

    known = orders["client_order_id"].isin(account.known_client_order_ids)
    orders.loc[approved & known, "status"] = ALREADY_SUBMITTED
    orders.loc[approved & known, "reason"] = "the broker already has this client order id"
    approved &= ~known

    if params.risk.kill_switch:
        refusals[approved] = "kill switch is on"
    execution = pd.Timestamp(account.clock.execution_session)
    allowed_sessions = {target_session, decision_date}
    if execution not in allowed_sessions:
        refusals[approved & (refusals == "")] = (
            f"broker clock: orders would execute on {execution.date()}, but the predictions "
            f"are for {target_session.date()}"
        )
    equity = account.equity
    if equity > 0:
        weights = orders["qty"] * orders["reference_price"] / equity
        held = {s: p.market_value / equity for s, p in account.positions.items()}
        after = weights + orders[C.SYMBOL].map(held).fillna(0.0)
        too_heavy = (
            approved
            & (orders["side"] == "buy")
            & (after > params.risk.max_weight_per_symbol + 1e-9)
        )
        refusals[too_heavy & (refusals == "")] = (
            f"position would exceed max_weight_per_symbol={params.risk.max_weight_per_symbol}"
        )
    bad_price = approved & ~(
        np.isfinite(orders["reference_price"]) & (orders["reference_price"] > 0)
    )
    refusals[bad_price & (refusals == "")] = "reference price is not a positive number"

    still = approved & (refusals == "")
    # Sells first: they free cash and cut predicted losses.
    order_rank = orders["side"].map({"sell": 0, "buy": 1})
    ranked = (
        orders[still]
        .assign(rank=order_rank)
        .sort_values(["rank", "predicted_return"], ascending=[True, False], kind="stable")
    )
    over_limit = ranked.index[params.risk.max_orders_per_run :]
    refusals[over_limit] = f"more than max_orders_per_run={params.risk.max_orders_per_run}"

    refused = refusals != ""
    orders.loc[refused, "status"] = REFUSED
    orders.loc[refused, "reason"] = refusals[refused]
    return orders


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
