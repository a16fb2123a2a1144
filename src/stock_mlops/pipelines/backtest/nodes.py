"""Nodes of the backtest pipeline: replay the real decision rule day by day on the local broker.

There is no second, vectorised strategy: every day calls :func:`~stock_mlops.core.strategy.
decide_orders` with that day's out-of-sample predictions and the simulated account, exactly as
the daily trading pipeline does, so the equity curve is what the trades and closes imply.

Beside the returns stand their costs and their luck: commission and slippage paid (gross
against net return), a block-bootstrap interval on the Sharpe ratio over a risk-free rate, and
a permutation test (the same rule on each symbol's predicted returns shuffled across dates).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core import metrics as M
from stock_mlops.core.outcomes import team_model_rows
from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.core.strategy import APPROVED, decide_orders, order_requests
from stock_mlops.core.vocabulary import UNCHANGED, VALIDATION, Unchanged
from stock_mlops.pipelines.backtest import planning, replay
from stock_mlops.pipelines.backtest.planning import BacktestPlan

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
    end = predictions["feature_date"].max()
    # One session past the last decision, so orders filled at the next open are valued.
    bars, sessions = replay.replay_bars(predictions, prices)
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


def plan_backtest(
    evaluation_predictions: pd.DataFrame,
    prices: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
    previous_permutation: dict[str, Any] | None,
    previous_trades: pd.DataFrame,
    previous_equity: pd.DataFrame,
) -> BacktestPlan:
    """Whether this run replays: not when the stored results came from these very inputs.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        prices: The ``prices`` dataset.
        trading: ``params:trading``.
        backtest: ``params:backtest``.
        team: ``params:team``.
        previous_permutation: The stored ``backtest_permutation`` document (None: none yet).
        previous_trades: The stored ``backtest_trades`` (no columns: none stored).
        previous_equity: The stored ``backtest_equity`` (no columns: none stored).

    Returns:
        The plan the replay and the permutation test follow.
    """
    predictions = backtest_predictions(evaluation_predictions, backtest)
    fingerprint = planning.inputs_fingerprint(predictions, prices, trading, backtest, team)
    stored = (
        planning.tables_digest(previous_trades, previous_equity)
        if len(previous_trades.columns) and len(previous_equity.columns)
        else None
    )
    plan = planning.plan(fingerprint, previous_permutation, stored)
    if not plan.due:
        logger.info(
            "backtest: the stored results were computed from these predictions, bars and "
            "parameters (fingerprint %s...); not replaying",
            fingerprint[:12],
        )
    return plan


def run_backtest(
    evaluation_predictions: pd.DataFrame,
    prices: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
    backtest_plan: BacktestPlan | None = None,
) -> tuple[pd.DataFrame | Unchanged, pd.DataFrame | Unchanged]:
    """The ``backtest_trades`` and ``backtest_equity`` datasets.

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        prices: The ``prices`` dataset.
        trading: ``params:trading``.
        backtest: ``params:backtest``.
        team: ``params:team``.
        backtest_plan: This run's plan (None: replay).

    Returns:
        Every simulated fill, and the strategy's and the benchmark's equity per date
        (UNCHANGED both when the plan says the stored ones still hold).
    """
    if backtest_plan is not None and not backtest_plan.due:
        return UNCHANGED, UNCHANGED
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


def permutation_test(
    evaluation_predictions: pd.DataFrame,
    prices: pd.DataFrame,
    equity: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
    backtest_plan: BacktestPlan | None = None,
    trades: pd.DataFrame | None = None,
) -> dict[str, Any] | Unchanged:
    """Skill against luck: the backtest's rule on shuffled predictions.

    Each symbol's predicted returns are shuffled across its decision days (seeded); the rule is
    replayed on every shuffle and the test reports the share of shuffles whose Sharpe ratio is
    at least the model's. The shuffles keep how often and how strongly the model predicts
    gains, and the market the rule trades in, but cut the link between a prediction and what
    followed: a share near one half says the model's timing and choice of stock add nothing
    to what the same rule earns at random. With ``all_in`` sizing the fast exact replay runs
    ``permutation.samples`` shuffles (after checking that it reproduces this backtest's equity
    curve); with other rules the real replay runs ``permutation.replay_samples`` (about 2 s
    each, so fewer; the result says which).

    Args:
        evaluation_predictions: The ``evaluation_predictions`` dataset.
        prices: The ``prices`` dataset.
        equity: The ``backtest_equity`` dataset (the model's own replay).
        trading: ``params:trading``.
        backtest: ``params:backtest``.
        team: ``params:team``.
        backtest_plan: This run's plan (None: replay).
        trades: The ``backtest_trades`` dataset (with a plan: its digest goes in the document).

    Returns:
        The ``backtest_permutation`` document: ``method`` (``fast_all_in`` | ``replay`` |
        ``off``), ``samples``, ``random_seed``, ``sharpe`` (the model's),
        ``share_at_least_as_good``, ``p_value`` = (1 + #shuffles at least as good) /
        (1 + samples), the shuffled Sharpe ratios' mean and 95th percentile, a ``note``; with
        a plan, its ``inputs_fingerprint`` and the ``tables_sha256`` of the trades and equity
        (UNCHANGED when the stored document still holds).
    """
    if backtest_plan is not None and not backtest_plan.due:
        return UNCHANGED
    result = _permutation_test(evaluation_predictions, prices, equity, trading, backtest, team)
    if backtest_plan is not None:
        if trades is None:
            raise ValueError("permutation_test: a plan needs the trades its document vouches for")
        result[planning.FINGERPRINT_KEY] = backtest_plan.fingerprint
        result[planning.TABLES_KEY] = planning.tables_digest(trades, equity)
    return result


def _permutation_test(
    evaluation_predictions: pd.DataFrame,
    prices: pd.DataFrame,
    equity: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
) -> dict[str, Any]:
    settings = backtest.permutation
    predictions = backtest_predictions(evaluation_predictions, backtest)
    inputs = replay.prepare_replay(predictions, prices, trading.risk.max_price_deviation)
    blocker = replay.fast_replay_blocker(trading, len(inputs.symbols))
    observed = equity["equity"].to_numpy(dtype=float)
    if not blocker:
        fast = replay.fast_all_in_equity(inputs, trading)
        if len(fast) != len(observed) or not np.allclose(fast, observed, rtol=1e-9, atol=1e-6):
            # A case the fast replay does not mirror: never report numbers it made up.
            blocker = "the fast replay did not reproduce this backtest's equity"
            logger.warning("permutation test: %s; replaying the real rule instead", blocker)
    method = "replay" if blocker else "fast_all_in"
    samples = settings.replay_samples if blocker else settings.samples
    if samples == 0:
        return {"method": "off", "samples": 0, "note": "no shuffles asked for (samples: 0)"}
    rf = backtest.risk_free_rate
    sharpe = _equity_sharpe(observed, rf)
    rng = np.random.default_rng(settings.random_seed)
    shuffled = np.empty(samples)
    for k in range(samples):
        score = replay.permuted_scores(inputs, rng)
        if method == "fast_all_in":
            curve = replay.fast_all_in_equity(inputs, trading, score)
        else:
            rows = replay.predictions_with_scores(predictions, inputs, score)
            curve = simulate(rows, prices, trading, team)[1]["equity"].to_numpy()
        shuffled[k] = _equity_sharpe(curve, rf)
    finite = shuffled[np.isfinite(shuffled)]
    at_least = int(np.sum(finite >= sharpe)) if math.isfinite(sharpe) else len(finite)
    note = (
        f"{samples} shuffles replayed with the exact fast replay of the all_in rule"
        if method == "fast_all_in"
        else f"{samples} shuffles replayed with the real decision rule ({blocker}; the fast "
        "replay covers regression mode with all_in sizing only)"
    )
    result = {
        "method": method,
        "samples": samples,
        "random_seed": settings.random_seed,
        "sharpe": _finite(sharpe),
        "share_at_least_as_good": at_least / len(finite) if len(finite) else None,
        "p_value": (1 + at_least) / (1 + len(finite)),
        "shuffled_sharpe_mean": _finite(float(finite.mean())) if len(finite) else None,
        "shuffled_sharpe_q95": _finite(float(np.quantile(finite, 0.95))) if len(finite) else None,
        "note": note,
    }
    logger.info("permutation test: %s", result)
    return result


def _equity_sharpe(equity: np.ndarray, risk_free_rate: float) -> float:
    returns = equity[1:] / equity[:-1] - 1
    return M.sharpe_ratio(pd.Series(returns), risk_free_rate)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def summarise_backtest(
    trades: pd.DataFrame,
    equity: pd.DataFrame,
    permutation: dict[str, Any],
    trading: TradingParams,
    backtest: BacktestParams,
) -> dict[str, Any]:
    """Summary statistics of the strategy and of the buy-and-hold benchmark.

    Args:
        trades: The ``backtest_trades`` dataset.
        equity: The ``backtest_equity`` dataset.
        permutation: The ``backtest_permutation`` document.
        trading: ``params:trading`` (the slippage that the fill prices include).
        backtest: ``params:backtest`` (risk-free rate, bootstrap).

    Returns:
        The ``backtest_metrics`` document: the strategy's and the benchmark's return, CAGR,
        volatility, Sharpe over ``risk_free_rate`` with its bootstrap interval, drawdown; costs
        (commission and slippage paid, gross return before them); the permutation test.
    """
    curve = equity.set_index("date")
    rf = backtest.risk_free_rate
    strategy = M.performance_metrics(curve["equity"], rf)
    benchmark = M.performance_metrics(curve["benchmark_equity"], rf)
    years = max(len(curve) - 1, 1) / M.TRADING_DAYS
    traded = float((trades["qty"] * trades["price"]).sum())
    sells = trades[trades["side"] == "sell"]
    costs = _costs(trades, curve.index, trading.local.slippage_bps)
    gross = M.performance_metrics(curve["equity"] + costs["cumulative"], rf)
    intervals = {
        name: M.sharpe_interval(
            curve[column].pct_change().dropna(),
            risk_free_rate=rf,
            samples=backtest.bootstrap_samples,
            seed=backtest.random_seed,
            kind=backtest.bootstrap,
        )
        for name, column in (("strategy", "equity"), ("benchmark", "benchmark_equity"))
    }
    summary: dict[str, Any] = {
        **strategy,
        "risk_free_rate": rf,
        "sharpe_ci_low": intervals["strategy"]["low"],
        "sharpe_ci_high": intervals["strategy"]["high"],
        "sharpe_ci_block": intervals["strategy"]["block"],
        "turnover": traded / 2 / float(curve["equity"].mean()) / years,
        "hit_rate": float((sells["realized_pnl"] > 0).mean()) if len(sells) else None,
        "n_trades": float(len(trades)),
        "fees": costs["commission"],
        "commission_paid": costs["commission"],
        "slippage_paid": costs["slippage"],
        "costs_paid": costs["commission"] + costs["slippage"],
        "gross_total_return": gross["total_return"],
        "gross_sharpe": gross["sharpe"],
        "cost_drag": gross["total_return"] - strategy["total_return"],
        **{f"benchmark_{k}": v for k, v in benchmark.items()},
        "benchmark_sharpe_ci_low": intervals["benchmark"]["low"],
        "benchmark_sharpe_ci_high": intervals["benchmark"]["high"],
        "excess_total_return": strategy["total_return"] - benchmark["total_return"],
        "permutation_method": permutation.get("method", "off"),
        "permutation_samples": float(permutation.get("samples", 0)),
        "permutation_share": permutation.get("share_at_least_as_good"),
        "permutation_p_value": permutation.get("p_value"),
        "permutation_shuffled_sharpe_mean": permutation.get("shuffled_sharpe_mean"),
    }
    summary = {k: _finite(v) for k, v in summary.items()}
    method = (
        f"{backtest.bootstrap} block bootstrap of days, {backtest.bootstrap_samples} resamples, "
        "Politis-White block length, percentile interval"
    )
    return {
        **summary,
        "sharpe_ci_method": method,
        "start": str(curve.index.min().date()),
        "end": str(curve.index.max().date()),
    }


def _costs(trades: pd.DataFrame, dates: pd.Index, slippage_bps: float) -> dict[str, Any]:
    """Commission and slippage paid; fill prices include the slippage, so it is backed out:
    a buy filled at p paid p - p/(1+s) a share, a sell filled at p gave up p/(1-s) - p."""
    s = slippage_bps / 10_000
    notional = trades["qty"] * trades["price"]
    buy = trades["side"] == "buy"
    slippage = np.where(buy, notional * (1 - 1 / (1 + s)), notional * (1 / (1 - s) - 1))
    per_fill = pd.Series(slippage, index=trades.index) + trades["fee"]
    by_day = per_fill.groupby(pd.to_datetime(trades["date"])).sum()
    cumulative = by_day.reindex(dates, fill_value=0.0).cumsum() if len(trades) else 0.0
    return {
        "commission": float(trades["fee"].sum()),
        "slippage": float(slippage.sum()),
        "cumulative": cumulative,
    }


def backtest_mlflow_metrics(backtest_metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The backtest's numbers as MLflow metrics (``backtest.<name>``, e.g. ``backtest.sharpe``).

    Args:
        backtest_metrics: The ``backtest_metrics`` document.

    Returns:
        Every finite number of the document, for kedro-mlflow's metrics dataset.
    """
    return {
        name: {"value": float(value), "step": 0}
        for name, value in backtest_metrics.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    }


def equity_plot_table(equity: pd.DataFrame) -> pd.DataFrame:
    """The equity curves and their drawdowns as one flat table, for ``dvc plots``.

    Args:
        equity: The ``backtest_equity`` dataset.

    Returns:
        ``date, equity, benchmark_equity, drawdown, benchmark_drawdown`` (dates as
        ``YYYY-MM-DD``).
    """
    return pd.DataFrame(
        {
            "date": pd.to_datetime(equity["date"]).dt.strftime("%Y-%m-%d"),
            "equity": equity["equity"].to_numpy(),
            "benchmark_equity": equity["benchmark_equity"].to_numpy(),
            "drawdown": M.drawdown(equity["equity"]).to_numpy(),
            "benchmark_drawdown": M.drawdown(equity["benchmark_equity"]).to_numpy(),
        }
    )


def headline(metrics: dict[str, Any]) -> str:
    """The backtest's figures in two lines of a chart title (plotly's ``<br>``)."""
    interval = (
        f" [{_fmt(metrics.get('sharpe_ci_low'), '.2f')}, "
        f"{_fmt(metrics.get('sharpe_ci_high'), '.2f')}]"
        if metrics.get("sharpe_ci_low") is not None
        else ""
    )
    share = metrics.get("permutation_share")
    luck = (
        f"; {share:.0%} of {metrics['permutation_samples']:.0f} shuffled predictions did as well"
        if share is not None
        else ""
    )
    return (
        f"Backtest {metrics.get('start')}..{metrics.get('end')}: strategy "
        f"{_fmt(metrics.get('total_return'), '+.1%')} (Sharpe {_fmt(metrics.get('sharpe'), '.2f')}"
        f"{interval}, max drawdown {_fmt(metrics.get('max_drawdown'), '.0%')}, costs "
        f"{_fmt(metrics.get('cost_drag'), '.1%')})<br>buy and hold "
        f"{_fmt(metrics.get('benchmark_total_return'), '+.1%')} (Sharpe "
        f"{_fmt(metrics.get('benchmark_sharpe'), '.2f')}){luck}"
    )


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def plot_equity(equity: pd.DataFrame, backtest_metrics: dict[str, Any]) -> go.Figure:
    """Plotly chart of the strategy's and the benchmark's equity, the headline in its title.

    Args:
        equity: The ``backtest_equity`` dataset.
        backtest_metrics: The ``backtest_metrics`` document.

    Returns:
        The figure.
    """
    figure = go.Figure()
    figure.add_scatter(x=equity["date"], y=equity["equity"], name="strategy")
    figure.add_scatter(x=equity["date"], y=equity["benchmark_equity"], name="buy and hold")
    figure.update_layout(title=headline(backtest_metrics), yaxis_title="equity", xaxis_title="date")
    return figure


def plot_drawdown(equity: pd.DataFrame, backtest_metrics: dict[str, Any]) -> go.Figure:
    """Plotly chart of the strategy's and the benchmark's drawdown.

    Args:
        equity: The ``backtest_equity`` dataset.
        backtest_metrics: The ``backtest_metrics`` document.

    Returns:
        The figure.
    """
    figure = go.Figure()
    for column, name in (("equity", "strategy"), ("benchmark_equity", "buy and hold")):
        figure.add_scatter(
            x=equity["date"], y=M.drawdown(equity[column]), name=name, fill="tozeroy"
        )
    figure.update_layout(
        title=headline(backtest_metrics), yaxis_tickformat=".0%", xaxis_title="date"
    )
    return figure


def plot_backtest_report(equity: pd.DataFrame, backtest_metrics: dict[str, Any]) -> go.Figure:
    """Equity above drawdown, strategy against buy and hold, on one page with shared dates:
    the chart saved as a self-contained HTML file (plotly.js inline) and logged to MLflow.

    Args:
        equity: The ``backtest_equity`` dataset.
        backtest_metrics: The ``backtest_metrics`` document.

    Returns:
        The figure.
    """
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.06,
        subplot_titles=("equity", "drawdown from the running peak"),
    )
    colours = {"strategy": "#1f77b4", "buy and hold": "#7f7f7f"}
    for column, name in (("equity", "strategy"), ("benchmark_equity", "buy and hold")):
        line = {"color": colours[name], "dash": "solid" if name == "strategy" else "dot"}
        figure.add_scatter(x=equity["date"], y=equity[column], name=name, line=line, row=1, col=1)
        figure.add_scatter(
            x=equity["date"],
            y=M.drawdown(equity[column]),
            name=f"{name} drawdown",
            line=line,
            fill="tozeroy",
            showlegend=False,
            row=2,
            col=1,
        )
    figure.update_yaxes(title_text="equity", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", row=2, col=1)
    figure.update_layout(
        title={"text": headline(backtest_metrics), "font": {"size": 15}},
        height=760,
        margin={"t": 110},
        legend={"orientation": "h", "y": -0.08},
    )
    return figure
