"""Nodes of the backtest pipeline: replay the real decision rule day by day on the local broker.

There is no second, vectorised strategy: every day calls :func:`~stock_mlops.core.strategy.
decide_orders` with that day's out-of-sample predictions and the simulated account, exactly as
the daily trading pipeline does, so the equity curve is what the trades and closes imply.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core import metrics as M
from stock_mlops.core.outcomes import team_model_rows
from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.core.strategy import APPROVED, decide_orders, order_requests
from stock_mlops.core.vocabulary import VALIDATION

logger = logging.getLogger(__name__)

TRADE_COLUMNS = ["date", C.SYMBOL, "side", "qty", "price", "fee", "realized_pnl", "client_order_id"]


def backtest_predictions(
    evaluation_predictions: pd.DataFrame, params: BacktestParams
) -> pd.DataFrame:
    """The team model's out-of-sample predictions over the backtest period, as log rows.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        params: ``params:backtest``.

    Returns:
        One row per symbol and decision day, in decision order.

    Raises:
        ValueError: When no prediction falls in the period.
    """
    rows = team_model_rows(evaluation_predictions)
    start = pd.Timestamp(params.start_date) if params.start_date else _first_test_decision_day(rows)
    end = pd.Timestamp(params.end_date) if params.end_date else rows["feature_date"].max()
    rows = rows[(rows["feature_date"] >= start) & (rows["feature_date"] <= end)]
    if rows.empty:
        raise ValueError(
            f"no out-of-sample predictions between {start.date()} and {end.date()} to backtest"
        )
    return pd.DataFrame(
        {
            C.SYMBOL: rows[C.SYMBOL].to_numpy(),
            "feature_date": pd.to_datetime(rows["feature_date"]).to_numpy(),
            C.TARGET_DATE: pd.to_datetime(rows[C.DATE]).to_numpy(),
            "last_close": rows["last_close"].to_numpy(dtype=float),
            "prediction": rows["prediction"].to_numpy(dtype=float),
            "predicted_direction": rows["predicted_direction"].to_numpy(),
        }
    ).sort_values(["feature_date", C.SYMBOL], kind="stable")


def _first_test_decision_day(rows: pd.DataFrame) -> pd.Timestamp:
    """The first decision day after every validation target: the test period's first session.

    Decisions made on the last validation session would trade on a validation target, so the
    default period starts the session after it.
    """
    validation = rows.loc[rows["split"] == VALIDATION, C.DATE]
    if validation.empty:
        return pd.Timestamp(rows["feature_date"].min())
    after = rows.loc[rows["feature_date"] > validation.max(), "feature_date"]
    return pd.Timestamp(after.min()) if len(after) else pd.Timestamp(validation.max())


def simulate(
    predictions: pd.DataFrame,
    prices: pd.DataFrame,
    params: TradingParams,
    team: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs the decision rule on every session from the first to the last prediction date.

    Args:
        predictions: Log-shaped rows (see :func:`backtest_predictions`).
        prices: The ``prices`` dataset.
        params: ``params:trading`` (the same rule and costs as the daily trading run).
        team: ``params:team`` (part of the simulated client order ids).

    Returns:
        ``(trades, equity)``: every fill, and per date the strategy's and the benchmark's equity
        (equal-weight buy-and-hold of the predicted symbols from the first close, no costs).
    """
    symbols = sorted(predictions[C.SYMBOL].unique())
    start, end = predictions["feature_date"].min(), predictions["feature_date"].max()
    bars = prices[prices[C.SYMBOL].isin(symbols)]
    # One session past the last decision, so orders filled at the next open are valued.
    sessions = sorted(bars.loc[bars[C.DATE] >= start, C.DATE].unique())
    sessions = [d for d in sessions if d <= end] + [d for d in sessions if d > end][:1]
    # A non-positive price is as unusable as a missing one: neither fills nor marks anything.
    opens = bars.pivot(index=C.DATE, columns=C.SYMBOL, values=C.OPEN).reindex(sessions)
    opens = opens.where(opens > 0)
    closes = bars.pivot(index=C.DATE, columns=C.SYMBOL, values=C.CLOSE).reindex(sessions)
    closes = closes.where(closes > 0)
    next_of = dict(zip(sessions, calendar.next_sessions(pd.Series(sessions)), strict=True))
    by_day = {day: rows for day, rows in predictions.groupby("feature_date", sort=False)}
    empty = predictions.iloc[0:0]

    broker = LocalPaperBroker(
        LocalPaperBroker.new_state(params.local.initial_cash),
        fill_at=params.local.fill_at,
        commission_bps=params.local.commission_bps,
        slippage_bps=params.local.slippage_bps,
    )
    names = closes.columns.to_numpy()
    open_values, close_values = opens.to_numpy(dtype=float), closes.to_numpy(dtype=float)
    equity = np.empty(len(sessions))
    for i, day in enumerate(sessions):
        broker.open_session(day, _valid(names, open_values[i]))
        day_closes = _valid(names, close_values[i])
        broker.close_session(day, day_closes)
        if day <= end:
            orders = decide_orders(
                by_day.get(day, empty),
                pd.Series(day_closes, dtype=float),
                broker.account(),
                params,
                team,
                day,
                next_of[day],
            )
            for request in order_requests(orders[orders["status"] == APPROVED]):
                broker.submit_order(request)
        equity[i] = broker.equity()

    trades = pd.DataFrame(broker.state["fills"], columns=TRADE_COLUMNS)
    trades["date"] = pd.to_datetime(trades["date"])
    first_close = closes.iloc[0].reindex(symbols)
    slice_of_cash = params.local.initial_cash / len(symbols)
    shares = slice_of_cash / first_close
    # A symbol without a close on the first day cannot be bought: its slice stays in cash.
    idle_cash = slice_of_cash * float(shares.isna().sum())
    benchmark = (closes.ffill() * shares.fillna(0.0)).sum(axis=1) + idle_cash
    curve = pd.DataFrame(
        {"date": pd.to_datetime(sessions), "equity": equity, "benchmark_equity": benchmark.values}
    )
    return trades, curve


def _valid(names: np.ndarray, values: np.ndarray) -> dict[str, float]:
    known = ~np.isnan(values)
    return dict(zip(names[known].tolist(), values[known].tolist(), strict=True))


def run_backtest(
    evaluation_predictions: pd.DataFrame,
    prices: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``backtest_trades`` and ``backtest_equity`` datasets.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        prices: The ``prices`` dataset.
        trading: ``params:trading``.
        backtest: ``params:backtest``.
        team: ``params:team``.

    Returns:
        Every simulated fill, and the strategy's and the benchmark's equity per date.
    """
    predictions = backtest_predictions(evaluation_predictions, backtest)
    trades, equity = simulate(predictions, prices, trading, team)
    logger.info(
        "backtest %s..%s: %d trades, final equity %.2f (benchmark %.2f)",
        equity["date"].min().date(),
        equity["date"].max().date(),
        len(trades),
        equity["equity"].iloc[-1],
        equity["benchmark_equity"].iloc[-1],
    )
    return trades, equity


def summarise_backtest(trades: pd.DataFrame, equity: pd.DataFrame) -> dict[str, Any]:
    """Summary statistics of the strategy and of the buy-and-hold benchmark.

    Args:
        trades: The ``backtest_trades`` dataset.
        equity: The ``backtest_equity`` dataset.

    Returns:
        The ``backtest_metrics`` document.
    """
    curve = equity.set_index("date")
    strategy = M.performance_metrics(curve["equity"])
    benchmark = M.performance_metrics(curve["benchmark_equity"])
    years = max(len(curve) - 1, 1) / M.TRADING_DAYS
    traded = float((trades["qty"] * trades["price"]).sum())
    sells = trades[trades["side"] == "sell"]
    summary: dict[str, Any] = {
        **strategy,
        "turnover": traded / 2 / float(curve["equity"].mean()) / years,
        "hit_rate": float((sells["realized_pnl"] > 0).mean()) if len(sells) else None,
        "n_trades": float(len(trades)),
        "fees": float(trades["fee"].sum()),
        **{f"benchmark_{k}": v for k, v in benchmark.items()},
        "excess_total_return": strategy["total_return"] - benchmark["total_return"],
    }
    summary = {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in summary.items()
    }
    return {**summary, "start": str(curve.index.min().date()), "end": str(curve.index.max().date())}


def plot_equity(equity: pd.DataFrame) -> go.Figure:
    """Plotly chart of the strategy's and the benchmark's equity.

    Args:
        equity: The ``backtest_equity`` dataset.

    Returns:
        The figure.
    """
    figure = go.Figure()
    figure.add_scatter(x=equity["date"], y=equity["equity"], name="strategy")
    figure.add_scatter(x=equity["date"], y=equity["benchmark_equity"], name="buy and hold")
    figure.update_layout(title="Backtest equity", yaxis_title="equity", xaxis_title="date")
    return figure


def plot_drawdown(equity: pd.DataFrame) -> go.Figure:
    """Plotly chart of the strategy's and the benchmark's drawdown.

    Args:
        equity: The ``backtest_equity`` dataset.

    Returns:
        The figure.
    """
    figure = go.Figure()
    for column, name in (("equity", "strategy"), ("benchmark_equity", "buy and hold")):
        figure.add_scatter(
            x=equity["date"], y=M.drawdown(equity[column]), name=name, fill="tozeroy"
        )
    figure.update_layout(title="Backtest drawdown", yaxis_tickformat=".0%", xaxis_title="date")
    return figure
