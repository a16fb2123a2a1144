"""A fast, exact replay of the backtest for the all_in rule, and the shuffles of a permutation test.

The permutation test replays the same rule hundreds of times on shuffled predictions. The real
replay (:func:`~stock_mlops.pipelines.backtest.nodes.simulate`, one call of ``decide_orders``
and of the simulated broker per day) costs about 2 s of CPU on the bundled test period, almost
all of it per-day pandas overhead; this module does the same arithmetic with floats and dicts in
about 10 ms.

It is exact only where it re-implements every rule that can bind: regression mode, ``all_in``
sizing, any threshold, both fill modes, slippage and commission, whole or fractional shares,
the cash buffer and the maximum weight per symbol. :func:`fast_replay_blocker` names what rules
it out (another sizing or mode, the kill switch, an order limit that could bind); the backtest
then replays the real decision function instead, and the tests compare the two curve by curve.

What the real replay does and this one mirrors, step by step, each session:
1. the broker fills pending orders at the open, sells first, in submission order; an order
   whose symbol has no valid open stays pending; a buy short of cash fills what it can;
2. the broker records the closes (a missing or non-positive close keeps the last valid one);
3. on a decision day ``decide_orders`` sells every held symbol predicted below -threshold,
   picks the best prediction above +threshold (ties by symbol), rotates other held symbols with
   a usable prediction out, and sizes the buy from cash plus the sells' proceeds net of costs,
   less the cash buffer, capped by the maximum weight; with ``fill_at: close`` orders fill at
   once at the close;
4. equity is cash plus positions at the last valid closes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.params import TradingParams

# The simulated broker's quantity tolerance (brokers.local._QTY_EPSILON).
_EPSILON = 1e-9


@dataclass(frozen=True)
class ReplayInputs:
    """Predictions and prices aligned on (session, symbol) arrays.

    Attributes:
        sessions: The decision sessions and the one after the last (its open fills orders).
        symbols: Column order of the arrays.
        opens: Session x symbol opens (NaN where unusable).
        closes: Session x symbol closes (NaN where unusable).
        n_decisions: ``sessions[:n_decisions]`` are decision days.
        usable: Decision day x symbol: the prediction passes ``decide_orders``' checks.
        score: Decision day x symbol: predicted return against that day's close (NaN when the
            prediction is not usable).
    """

    sessions: np.ndarray
    symbols: list[str]
    opens: np.ndarray
    closes: np.ndarray
    n_decisions: int
    usable: np.ndarray
    score: np.ndarray


def replay_bars(
    predictions: pd.DataFrame, prices: pd.DataFrame
) -> tuple[pd.DataFrame, list[pd.Timestamp]]:
    """The bars a replay of ``predictions`` reads, and its sessions.

    Args:
        predictions: ``symbol, feature_date, ...`` rows.
        prices: The ``prices`` dataset.

    Returns:
        The predicted symbols' bars from the first decision day to the session after the last
        one (its open fills the last orders), and those sessions in order.
    """
    symbols = predictions[C.SYMBOL].unique()
    start, end = predictions["feature_date"].min(), predictions["feature_date"].max()
    bars = prices[prices[C.SYMBOL].isin(symbols) & (prices[C.DATE] >= start)]
    sessions = sorted(bars[C.DATE].unique())
    sessions = [d for d in sessions if d <= end] + [d for d in sessions if d > end][:1]
    return bars[bars[C.DATE] <= sessions[-1]] if sessions else bars, sessions


def prepare_replay(
    predictions: pd.DataFrame, prices: pd.DataFrame, max_price_deviation: float
) -> ReplayInputs:
    """Aligns log-shaped predictions with prices as the real replay does, and applies the
    decision rule's validity checks once for all days.

    Args:
        predictions: ``symbol, feature_date, target_date, last_close, prediction`` rows.
        prices: The ``prices`` dataset.
        max_price_deviation: ``trading.risk.max_price_deviation``.

    Returns:
        The aligned arrays.
    """
    symbols = sorted(predictions[C.SYMBOL].unique())
    end = predictions["feature_date"].max()
    bars, sessions = replay_bars(predictions, prices)
    opens = bars.pivot(index=C.DATE, columns=C.SYMBOL, values=C.OPEN).reindex(sessions)
    closes = bars.pivot(index=C.DATE, columns=C.SYMBOL, values=C.CLOSE).reindex(sessions)
    opens, closes = opens.where(opens > 0), closes.where(closes > 0)
    opens, closes = opens.reindex(columns=symbols), closes.reindex(columns=symbols)
    n_decisions = sum(1 for d in sessions if d <= end)
    next_of = dict(zip(sessions, calendar.next_sessions(pd.Series(sessions)), strict=True))
    # One prediction per symbol and day, the last one winning, as decide_orders keeps it.
    rows = predictions.drop_duplicates(["feature_date", C.SYMBOL], keep="last")
    position = {d: i for i, d in enumerate(sessions[:n_decisions])}
    rows = rows[rows["feature_date"].isin(position)]
    i = rows["feature_date"].map(position).to_numpy(dtype=int)
    j = rows[C.SYMBOL].map({s: k for k, s in enumerate(symbols)}).to_numpy(dtype=int)
    close = closes.to_numpy(dtype=float)[i, j]
    last = rows["last_close"].to_numpy(dtype=float)
    price = rows["prediction"].to_numpy(dtype=float)
    expected = np.array([next_of[d] for d in rows["feature_date"]], dtype="datetime64[ns]")
    target = pd.to_datetime(rows[C.TARGET_DATE]).to_numpy(dtype="datetime64[ns]")
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (
            (target == expected)
            & np.isfinite(close)
            & (close > 0)
            & np.isfinite(last)
            & (last > 0)
            & (np.abs(last / close - 1) <= max_price_deviation)
            & np.isfinite(price)
            & (price > 0)
        )
        score = price / close - 1
    usable = np.zeros((n_decisions, len(symbols)), dtype=bool)
    scores = np.full((n_decisions, len(symbols)), np.nan)
    usable[i[ok], j[ok]] = True
    scores[i[ok], j[ok]] = score[ok]
    return ReplayInputs(
        sessions=np.array(sessions, dtype="datetime64[ns]"),
        symbols=symbols,
        opens=opens.to_numpy(dtype=float),
        closes=closes.to_numpy(dtype=float),
        n_decisions=n_decisions,
        usable=usable,
        score=scores,
    )


def fast_replay_blocker(params: TradingParams, n_symbols: int) -> str:
    """Why the fast replay would not be exact for these parameters ("" when it is)."""
    if params.mode != "regression":
        return f"mode '{params.mode}' (the fast replay covers regression mode)"
    if params.sizing != "all_in":
        return f"sizing '{params.sizing}' (the fast replay covers all_in)"
    if params.risk.kill_switch:
        return "the kill switch is on"
    # At most every held symbol is sold and one is bought in a day.
    if params.risk.max_orders_per_run < n_symbols + 1:
        return f"max_orders_per_run={params.risk.max_orders_per_run} could bind"
    return ""


def fast_all_in_equity(
    inputs: ReplayInputs, params: TradingParams, score: np.ndarray | None = None
) -> np.ndarray:
    """The equity curve of the all_in rule, one value per session (see the module docstring).

    Args:
        inputs: The aligned data.
        params: ``params:trading`` (checked with :func:`fast_replay_blocker` by the caller).
        score: Replaces ``inputs.score`` (shuffled predicted returns; NaN = not usable).

    Returns:
        Cash plus positions at the last valid closes after each session.
    """
    score = inputs.score if score is None else score
    local, risk = params.local, params.risk
    slip, commission = local.slippage_bps / 10_000, local.commission_bps / 10_000
    sell_factor, buy_factor = (1 - slip) * (1 - commission), (1 + slip) * (1 + commission)
    weight = min(1.0, risk.max_weight_per_symbol)
    names = inputs.symbols
    n_symbols = len(names)
    cash = float(local.initial_cash)
    qty: dict[int, float] = {}  # insertion order is the broker's (positions dict) order
    avg: dict[int, float] = {}
    last: dict[int, float] = {}
    pending: list[tuple[int, str, float]] = []
    equity = np.empty(len(inputs.sessions))

    def fill(j: int, side: str, wanted: float, price: float) -> None:
        nonlocal cash
        fill_price = price * (1 + slip) if side == "buy" else price * (1 - slip)
        quantity = wanted
        if side == "buy":
            affordable = cash / (fill_price * (1 + commission))
            if affordable + _EPSILON < quantity:
                quantity = math.floor(affordable) if float(quantity).is_integer() else affordable
            if quantity <= 0:
                return
        else:
            held = qty.get(j, 0.0)
            if held <= _EPSILON:
                return
            quantity = min(quantity, held) if held + _EPSILON < quantity else quantity
        notional = quantity * fill_price
        fee = notional * commission
        if side == "buy":
            total = qty.get(j, 0.0) + quantity
            avg[j] = (avg.get(j, 0.0) * qty.get(j, 0.0) + notional) / total
            qty[j] = total
            cash = cash - notional - fee
        else:
            qty[j] -= quantity
            if qty[j] <= _EPSILON:
                del qty[j], avg[j]
            cash = cash + notional - fee

    for i in range(len(inputs.sessions)):
        if pending:
            still = []
            for j, side, quantity in sorted(pending, key=lambda order: order[1] != "sell"):
                price = inputs.opens[i, j]
                if not price > 0:  # NaN or non-positive: the order waits
                    still.append((j, side, quantity))
                    continue
                fill(j, side, quantity, price)
            pending = still
        for j in range(n_symbols):
            close = inputs.closes[i, j]
            if close > 0:
                last[j] = close
        if i < inputs.n_decisions:
            factors = (sell_factor, buy_factor)
            orders = _decide(i, inputs, score, qty, avg, last, cash, params, weight, factors)
            for j, side, quantity in orders:
                if side == "sell" and quantity > qty.get(j, 0.0) + _EPSILON:
                    continue  # the broker rejects it
                if local.fill_at == "close":
                    fill(j, side, quantity, last[j])
                else:
                    pending.append((j, side, quantity))
        equity[i] = cash + sum(q * last.get(j, avg[j]) for j, q in qty.items())
    return equity


def _decide(
    i: int,
    inputs: ReplayInputs,
    score: np.ndarray,
    qty: dict[int, float],
    avg: dict[int, float],
    last: dict[int, float],
    cash: float,
    params: TradingParams,
    weight: float,
    factors: tuple[float, float],
) -> list[tuple[int, str, float]]:
    """``decide_orders`` for all_in sizing, on column indices: sells first, then the buy.

    ``factors`` are what a sell brings in and a buy costs per unit of price, costs included.
    """
    threshold = params.threshold
    sell_factor, buy_factor = factors
    scores, usable = score[i], inputs.usable[i]
    held = [j for j in qty if qty[j] > 0]
    mark = {j: last.get(j, avg[j]) for j in held}
    account_equity = cash + sum(qty[j] * mark[j] for j in held)
    price = {
        j: inputs.closes[i, j]
        for j in range(len(inputs.symbols))
        if usable[j] and np.isfinite(scores[j])
    }
    scored = set(price)
    for j in held:
        price.setdefault(j, mark[j])
    losers = [j for j in held if j in scored and scores[j] < -threshold]
    gainers = [(j, scores[j]) for j in scored if scores[j] > threshold]
    pick = min(gainers, key=lambda g: (-g[1], inputs.symbols[g[0]]))[0] if gainers else None
    rotated = [j for j in held if j in scored and j not in losers and j != pick] if gainers else []
    sells = [(j, qty[j]) for j in losers + rotated]
    orders: list[tuple[int, str, float]] = [(j, "sell", q) for j, q in sells]
    if pick is None:
        return orders
    proceeds = sum(q * price[j] for j, q in sells) * sell_factor
    budget_cash = cash + proceeds - params.risk.min_cash_buffer * account_equity
    current = qty[pick] * price[pick] if qty.get(pick, 0.0) > 0 else 0.0
    room = weight * account_equity - current
    budget = min(max(room, 0.0), max(budget_cash, 0.0))
    raw = budget / (price[pick] * buy_factor)
    if params.fractional_shares:
        quantity = math.floor(raw * 10_000) / 10_000
    else:
        quantity = float(math.floor(raw + 1e-9))
    held_weight = qty[pick] * mark[pick] / account_equity if pick in qty and account_equity else 0
    over = (
        account_equity > 0
        and quantity * price[pick] / account_equity + held_weight
        > params.risk.max_weight_per_symbol + 1e-9
    )
    if quantity > 0 and not over and math.isfinite(price[pick]) and price[pick] > 0:
        orders.append((pick, "buy", quantity))
    return orders


def permuted_scores(inputs: ReplayInputs, rng: np.random.Generator) -> np.ndarray:
    """Each symbol's predicted returns shuffled across its usable decision days.

    Predicted *returns* are shuffled, not predicted prices (a price from another day would be a
    different return today); which days are usable stays as it was, so the rule sees the same
    number of usable predictions per symbol, only in an order unrelated to what followed.
    """
    out = np.full_like(inputs.score, np.nan)
    for j in range(inputs.score.shape[1]):
        cells = np.flatnonzero(inputs.usable[:, j])
        out[cells, j] = inputs.score[rng.permutation(cells), j]
    return out


def predictions_with_scores(
    predictions: pd.DataFrame, inputs: ReplayInputs, score: np.ndarray
) -> pd.DataFrame:
    """Log-shaped predictions whose usable rows predict ``score`` against that day's close, for
    the real replay of a shuffle (unusable rows are kept as they are: the rule refuses them)."""
    rows = predictions.drop_duplicates(["feature_date", C.SYMBOL], keep="last").copy()
    position = {d: i for i, d in enumerate(pd.to_datetime(inputs.sessions[: inputs.n_decisions]))}
    i = pd.to_datetime(rows["feature_date"]).map(position)
    j = rows[C.SYMBOL].map({s: k for k, s in enumerate(inputs.symbols)})
    inside = i.notna().to_numpy()
    i_in, j_in = i[inside].to_numpy(dtype=int), j[inside].to_numpy(dtype=int)
    usable = inputs.usable[i_in, j_in]
    new = inputs.closes[i_in, j_in] * (1 + score[i_in, j_in])
    values = rows["prediction"].to_numpy(dtype=float).copy()
    target = np.flatnonzero(inside)[usable]
    values[target] = new[usable]
    rows["prediction"] = values
    return rows
