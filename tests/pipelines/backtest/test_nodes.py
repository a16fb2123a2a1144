"""Backtest nodes: the replay through the real decision rule, its equity and its metrics."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core import calendar, strategy
from stock_mlops.core.params import (
    BacktestParams,
    ParameterError,
    TradingParams,
    validate_parameters,
)
from stock_mlops.pipelines.backtest import nodes
from stock_mlops.pipelines.backtest.nodes import (
    backtest_predictions,
    plot_drawdown,
    plot_equity,
    run_backtest,
    simulate,
    summarise_backtest,
)

NO_PERMUTATION = {"method": "off", "samples": 0}

START, END = pd.Timestamp("2023-01-03"), pd.Timestamp("2023-04-28")
CASH = 100_000.0


def trading(fill_at: str = "next_open", **overrides: Any) -> TradingParams:
    local = {
        "initial_cash": CASH,
        "fill_at": fill_at,
        "allow_close_fill": fill_at == "close",
        "commission_bps": 2.0,
        "slippage_bps": 5.0,
        **overrides.pop("local", {}),
    }
    return TradingParams.parse({"local": local, **overrides})


def foresight(
    prices: pd.DataFrame, start: pd.Timestamp = START, end: pd.Timestamp = END, sign: float = 1.0
) -> pd.DataFrame:
    """Predictions of the next close made from each close: exact (sign 1) or mirrored (-1)."""
    frame = prices.sort_values(["symbol", "date"])
    following = frame.groupby("symbol")["close"].shift(-1)
    rows = frame.assign(next_close=following)
    rows = rows[(rows["date"] >= start) & (rows["date"] <= end)].dropna(subset=["next_close"])
    prediction = rows["close"] + sign * (rows["next_close"] - rows["close"])
    return pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "feature_date": rows["date"].to_numpy(),
            "target_date": calendar.next_sessions(rows["date"]).to_numpy(),
            "last_close": rows["close"].to_numpy(),
            "prediction": prediction.to_numpy(),
            "predicted_direction": np.where(prediction > rows["close"], "up", "down"),
        }
    )


def replay_equity(trades: pd.DataFrame, closes: pd.DataFrame, cash: float) -> pd.Series:
    """Equity implied by the fills alone: cash flows plus holdings at each day's close."""
    signed = np.where(trades["side"] == "buy", 1.0, -1.0)
    flows = trades.assign(
        cash=-signed * trades["qty"] * trades["price"] - trades["fee"],
        shares=signed * trades["qty"],
    )
    cash_by_day = flows.groupby("date")["cash"].sum().reindex(closes.index, fill_value=0.0)
    shares = (
        flows.pivot_table(index="date", columns="symbol", values="shares", aggfunc="sum")
        .reindex(index=closes.index, columns=closes.columns, fill_value=0.0)
        .fillna(0.0)
        .cumsum()
    )
    return cash + cash_by_day.cumsum() + (shares * closes.ffill()).sum(axis=1)


def closes_over(prices: pd.DataFrame, dates: pd.Series) -> pd.DataFrame:
    table = prices.pivot(index="date", columns="symbol", values="close")
    return table.reindex(pd.DatetimeIndex(dates))


# ---------------------------------------------------------------------------------- simulate
@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_equity_is_what_the_trades_and_closes_imply(small_prices: pd.DataFrame, fill_at: str):
    trades, equity = simulate(foresight(small_prices), small_prices, trading(fill_at), "red")
    assert len(trades) > 20
    assert list(trades.columns[:6]) == ["date", "symbol", "side", "qty", "price", "fee"]
    closes = closes_over(small_prices, equity["date"])
    implied = replay_equity(trades, closes, CASH)
    np.testing.assert_allclose(equity["equity"].to_numpy(), implied.to_numpy(), rtol=1e-10)


def test_benchmark_is_equal_weight_buy_and_hold_from_the_first_close(
    small_prices: pd.DataFrame,
):
    _, equity = simulate(foresight(small_prices), small_prices, trading(), "red")
    closes = closes_over(small_prices, equity["date"])
    shares = CASH / 3 / closes.iloc[0]
    expected = (closes * shares).sum(axis=1)
    np.testing.assert_allclose(equity["benchmark_equity"].to_numpy(), expected.to_numpy())
    assert equity["benchmark_equity"].iat[0] == pytest.approx(CASH)


def test_sessions_run_from_the_first_decision_to_the_session_after_the_last(
    small_prices: pd.DataFrame,
):
    _, equity = simulate(foresight(small_prices), small_prices, trading(), "red")
    assert equity["date"].iat[0] == START
    assert equity["date"].iat[-1] == pd.Timestamp("2023-05-01")
    assert equity["equity"].iat[0] == pytest.approx(CASH)


def test_every_decision_day_goes_through_the_real_decide_orders(
    small_prices: pd.DataFrame, monkeypatch
):
    assert nodes.decide_orders is strategy.decide_orders
    days = []

    def counting(*args: Any, **kwargs: Any) -> pd.DataFrame:
        days.append(args[5])
        return strategy.decide_orders(*args, **kwargs)

    monkeypatch.setattr(nodes, "decide_orders", counting)
    predictions = foresight(small_prices)
    simulate(predictions, small_prices, trading(), "red")
    assert days == sorted(predictions["feature_date"].unique())


def test_perfect_foresight_beats_its_mirror_image(small_prices: pd.DataFrame):
    _, good = simulate(foresight(small_prices), small_prices, trading(), "red")
    _, bad = simulate(foresight(small_prices, sign=-1.0), small_prices, trading(), "red")
    assert good["equity"].iat[-1] > CASH > bad["equity"].iat[-1]
    # The same market for both: the benchmarks are identical.
    pd.testing.assert_series_equal(good["benchmark_equity"], bad["benchmark_equity"])


def test_predictions_inside_the_band_never_trade(small_prices: pd.DataFrame):
    flat = foresight(small_prices).pipe(lambda f: f.assign(prediction=f["last_close"]))
    trades, equity = simulate(flat, small_prices, trading(), "red")
    assert trades.empty
    assert (equity["equity"] == CASH).all()


def test_a_day_without_predictions_trades_nothing_that_day(small_prices: pd.DataFrame):
    predictions = foresight(small_prices, end=pd.Timestamp("2023-01-31"))
    gap = pd.Timestamp("2023-01-17")
    trades, equity = simulate(
        predictions[predictions["feature_date"] != gap], small_prices, trading("close"), "red"
    )
    assert gap in set(equity["date"])
    assert gap not in set(trades["date"])


@pytest.mark.parametrize("bad_close", [math.nan, -1.0])
def test_a_bad_close_neither_trades_nor_marks_the_equity(
    small_prices: pd.DataFrame, bad_close: float
):
    bad_day = pd.Timestamp("2023-02-15")
    bad = (small_prices["date"] == bad_day) & (small_prices["symbol"] != "AAPL")
    prices = small_prices.assign(close=small_prices["close"].mask(bad, bad_close))
    predictions = foresight(small_prices)
    params = trading("close", sizing="equal_weight", top_k=3)
    trades, equity = simulate(predictions, prices, params, "red")
    assert set(trades.loc[trades["date"] == bad_day, "symbol"]) <= {"AAPL"}
    bought = trades[(trades["date"] < bad_day) & (trades["side"] == "buy")]
    assert {"MSFT", "NVDA"} & set(bought["symbol"])  # a position the bad close could mark
    valid = closes_over(prices, equity["date"]).where(lambda c: c > 0)
    implied = replay_equity(trades, valid, CASH)
    np.testing.assert_allclose(equity["equity"].to_numpy(), implied.to_numpy(), rtol=1e-10)
    benchmark = (CASH / 3 / valid.iloc[0] * valid.ffill()).sum(axis=1)
    np.testing.assert_allclose(equity["benchmark_equity"].to_numpy(), benchmark.to_numpy())


def test_a_symbol_without_a_first_close_leaves_its_slice_of_the_benchmark_in_cash(
    small_prices: pd.DataFrame,
):
    late = small_prices[~((small_prices["symbol"] == "NVDA") & (small_prices["date"] == START))]
    _, equity = simulate(foresight(small_prices), late, trading(), "red")
    assert equity["benchmark_equity"].iat[0] == pytest.approx(CASH)


# ----------------------------------------------------------------------- run_backtest & inputs
def evaluation_rows(prices: pd.DataFrame) -> pd.DataFrame:
    own = foresight(prices, start=pd.Timestamp("2022-06-01"), end=pd.Timestamp("2022-08-31"))
    base = pd.DataFrame(
        {
            "symbol": own["symbol"],
            "date": own["target_date"],
            "feature_date": own["feature_date"],
            "model": "ludwig",
            # The split of training.split: validation up to 2022-06-30, test after.
            "split": np.where(
                own["target_date"] <= pd.Timestamp("2022-06-30"), "validation", "test"
            ),
            "fold": "holdout",
            "last_close": own["last_close"],
            "prediction": own["prediction"],
            "actual": own["prediction"],
            "predicted_direction": own["predicted_direction"],
        }
    )
    return pd.concat(
        [base, base.assign(model="naive"), base.assign(fold="2022")], ignore_index=True
    )


def test_backtest_predictions_are_the_models_holdout_rows_after_validation(
    small_prices: pd.DataFrame,
):
    out = backtest_predictions(evaluation_rows(small_prices), BacktestParams())
    assert out["feature_date"].min() == pd.Timestamp("2022-07-01")
    assert out["feature_date"].max() == pd.Timestamp("2022-08-31")
    assert len(out) == 3 * out["feature_date"].nunique()
    assert list(out.columns) == [
        "symbol",
        "feature_date",
        "target_date",
        "last_close",
        "prediction",
        "predicted_direction",
    ]


def test_backtest_predictions_outside_the_period_are_an_error(small_prices: pd.DataFrame):
    with pytest.raises(ValueError, match="no out-of-sample predictions between 2023-01-01"):
        backtest_predictions(
            evaluation_rows(small_prices), BacktestParams(start_date=dt.date(2023, 1, 1))
        )


def test_run_backtest(small_prices: pd.DataFrame):
    trades, equity = run_backtest(
        evaluation_rows(small_prices),
        small_prices,
        trading(fill_at="close"),
        BacktestParams(end_date=dt.date(2022, 7, 29)),
        "red",
    )
    assert equity["date"].iat[0] == pd.Timestamp("2022-07-01")
    assert equity["date"].iat[-1] == pd.Timestamp("2022-08-01")
    assert not trades.empty and trades["date"].max() <= pd.Timestamp("2022-07-29")


# -------------------------------------------------------------------------------- summaries
def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.to_datetime(["2023-01-03", "2023-01-04", "2023-01-05", "2023-01-06"])
    equity = pd.DataFrame(
        {
            "date": dates,
            "equity": [100.0, 110.0, 99.0, 108.9],
            "benchmark_equity": [100.0, 101.0, 100.5, 103.0],
        }
    )
    trades = pd.DataFrame(
        {
            "date": dates,
            "symbol": "AAA",
            "side": ["buy", "sell", "buy", "sell"],
            "qty": [1.0, 1.0, 1.0, 1.0],
            "price": [100.0, 110.0, 99.0, 108.9],
            "fee": [0.1, 0.1, 0.1, 0.1],
            "realized_pnl": [None, 9.9, None, -0.2],
            "client_order_id": ["a", "b", "c", "d"],
        }
    )
    return trades, equity


def test_summary_by_hand():
    trades, equity = hand_made()
    out = summarise_backtest(
        trades, equity, NO_PERMUTATION, trading(local={"slippage_bps": 0.0}), BacktestParams()
    )
    years = 3 / 252
    assert out["total_return"] == pytest.approx(0.089)
    assert out["cagr"] == pytest.approx(1.089 ** (1 / years) - 1)
    assert out["sharpe"] == pytest.approx(math.sqrt(75 * 252) / 30)
    assert out["volatility"] == pytest.approx(math.sqrt(252 / 75))
    assert out["max_drawdown"] == pytest.approx(-0.1)
    assert out["turnover"] == pytest.approx(417.9 / 2 / 104.475 / years)
    assert out["hit_rate"] == 0.5
    assert out["n_trades"] == 4
    assert out["fees"] == pytest.approx(0.4)
    assert out["benchmark_total_return"] == pytest.approx(0.03)
    assert out["benchmark_max_drawdown"] == pytest.approx(100.5 / 101 - 1)
    assert out["excess_total_return"] == pytest.approx(0.089 - 0.03)
    assert (out["start"], out["end"]) == ("2023-01-03", "2023-01-06")


def test_summary_without_trades_has_no_hit_rate_and_no_undefined_numbers():
    trades, equity = hand_made()
    flat = equity.assign(equity=100.0)
    out = summarise_backtest(trades.iloc[0:0], flat, NO_PERMUTATION, trading(), BacktestParams())
    assert out["n_trades"] == 0 and out["turnover"] == 0.0
    assert out["hit_rate"] is None
    assert out["sharpe"] is None and out["volatility"] == 0.0
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in out.values())


def test_charts_show_the_strategy_and_the_benchmark():
    trades, equity = hand_made()
    metrics = summarise_backtest(trades, equity, NO_PERMUTATION, trading(), BacktestParams())
    for chart in (plot_equity(equity, metrics), plot_drawdown(equity, metrics)):
        assert [trace.name for trace in chart.data] == ["strategy", "buy and hold"]
        assert "+8.9%" in chart.layout.title.text  # the headline figures are in the title
    drawdown = plot_drawdown(equity, metrics).data[0].y
    assert min(drawdown) == pytest.approx(-0.1)


# ------------------------------------------------------------------ costs, intervals, refusal
def test_commission_and_slippage_are_reported_apart_and_gross_against_net():
    _, equity = hand_made()
    dates = equity["date"]
    trades = pd.DataFrame(
        {
            "date": [dates[1], dates[3]],
            "symbol": "AAA",
            "side": ["buy", "sell"],
            "qty": [1.0, 1.0],
            # 1% slippage: bought at 101 for a price of 100, sold at 108.9 for a price of 110.
            "price": [101.0, 108.9],
            "fee": [0.2, 0.2],
            "realized_pnl": [None, 7.7],
            "client_order_id": ["a", "b"],
        }
    )
    params = trading(local={"slippage_bps": 100.0})
    out = summarise_backtest(trades, equity, NO_PERMUTATION, params, BacktestParams())
    assert out["commission_paid"] == out["fees"] == pytest.approx(0.4)
    assert out["slippage_paid"] == pytest.approx(1.0 + 1.1)
    assert out["costs_paid"] == pytest.approx(2.5)
    # Gross equity adds back what the costs took, from the day they were paid.
    assert out["gross_total_return"] == pytest.approx((108.9 + 2.5) / 100 - 1)
    assert out["cost_drag"] == pytest.approx(out["gross_total_return"] - out["total_return"])


def backtest_curve(days: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0008, 0.01, days)
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2022-01-03", periods=days + 1),
            "equity": 100_000 * np.cumprod(np.r_[1.0, 1 + returns]),
            "benchmark_equity": 100_000 * np.cumprod(np.r_[1.0, 1 + returns[::-1]]),
        }
    )


def test_every_sharpe_has_its_interval_and_a_risk_free_rate():
    trades, _ = hand_made()
    equity = backtest_curve()
    zero = summarise_backtest(trades, equity, NO_PERMUTATION, trading(), BacktestParams())
    assert zero["sharpe_ci_low"] < zero["sharpe"] < zero["sharpe_ci_high"]
    assert zero["benchmark_sharpe_ci_low"] < zero["benchmark_sharpe"]
    assert "stationary block bootstrap" in zero["sharpe_ci_method"]
    rf = summarise_backtest(
        trades, equity, NO_PERMUTATION, trading(), BacktestParams(risk_free_rate=0.05)
    )
    assert rf["risk_free_rate"] == 0.05
    assert rf["sharpe"] < zero["sharpe"] and rf["benchmark_sharpe"] < zero["benchmark_sharpe"]
    assert rf["total_return"] == zero["total_return"]  # the rate moves the Sharpe, not the return


def test_the_permutation_result_sits_beside_the_sharpe():
    trades, equity = hand_made()
    permutation = {
        "method": "fast_all_in",
        "samples": 300,
        "share_at_least_as_good": 0.52,
        "p_value": 157 / 301,
        "shuffled_sharpe_mean": 1.1,
    }
    out = summarise_backtest(trades, equity, permutation, trading(), BacktestParams())
    assert out["permutation_share"] == 0.52 and out["permutation_samples"] == 300
    assert "52% of 300 shuffled predictions did as well" in nodes.headline(out)


def test_fill_at_close_is_refused_with_the_reason():
    with pytest.raises(ParameterError, match=r"trading.local.*look-ahead.*allow_close_fill"):
        TradingParams.parse({"local": {"fill_at": "close"}}, "trading")
    # The whole-tree check at start-up refuses `--params trading.local.fill_at=close` too.
    with pytest.raises(ParameterError, match="very close its decision was computed from"):
        validate_parameters({"trading": {"local": {"fill_at": "close"}}})
    allowed = TradingParams.parse({"local": {"fill_at": "close", "allow_close_fill": True}})
    assert allowed.local.fill_at == "close"
    assert TradingParams().local.fill_at == "next_open"


def test_equity_plot_table_for_dvc_plots():
    _, equity = hand_made()
    table = nodes.equity_plot_table(equity)
    assert list(table.columns) == [
        "date",
        "equity",
        "benchmark_equity",
        "drawdown",
        "benchmark_drawdown",
    ]
    assert table["date"].iloc[0] == "2023-01-03"
    assert table["drawdown"].min() == pytest.approx(-0.1)


def test_backtest_figures_become_readable_mlflow_metrics():
    trades, equity = hand_made()
    metrics = summarise_backtest(trades, equity, NO_PERMUTATION, trading(), BacktestParams())
    logged = nodes.backtest_mlflow_metrics(metrics)
    assert logged["sharpe"] == {"value": metrics["sharpe"], "step": 0}
    assert "total_return" in logged and "benchmark_sharpe" in logged
    assert "start" not in logged and "sharpe_ci_method" not in logged  # text stays in the JSON
    assert "permutation_share" not in logged  # None is not a metric


@pytest.mark.browser
def test_backtest_report_opens_offline_with_its_headline(tmp_path, browser):
    from kedro_datasets.plotly import HTMLDataset

    trades, _ = hand_made()
    equity = backtest_curve()
    metrics = summarise_backtest(trades, equity, NO_PERMUTATION, trading(), BacktestParams())
    page = tmp_path / "backtest_report.html"
    save_args = {"include_plotlyjs": True, "full_html": True, "auto_open": False}
    HTMLDataset(filepath=str(page), save_args=save_args).save(
        nodes.plot_backtest_report(equity, metrics)
    )
    browser.open(page.as_uri(), wait_css=".main-svg")
    plots = browser.assert_visible(".js-plotly-plot", min_width=800, min_height=600)
    assert f"{metrics['total_return']:+.1%}" in plots[0]["text"]
    assert browser.script("return document.querySelectorAll('.scatterlayer .trace').length") == 4
    assert browser.nonlocal_requests() == []
    assert browser.console_errors() == []


def test_backtest_report_is_saved_and_logged_to_mlflow_with_plotly_inline(tmp_path, monkeypatch):
    import mlflow

    from stock_mlops.datasets import AtomicDataset

    trades, _ = hand_made()
    equity = backtest_curve()
    metrics = summarise_backtest(trades, equity, NO_PERMUTATION, trading(), BacktestParams())
    figure = nodes.plot_backtest_report(equity, metrics)
    dataset = AtomicDataset(
        dataset={"type": "plotly.HTMLDataset", "save_args": {"include_plotlyjs": True}},
        filepath=str(tmp_path / "08_reporting/backtest_report.html"),
        mlflow_artifact="charts/backtest_report.html",
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("t", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        dataset.save(figure)
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="charts/backtest_report.html", dst_path=tmp_path
    )
    for page in (tmp_path / "08_reporting/backtest_report.html", logged):
        text = open(page, encoding="utf-8").read()
        # plotly.js itself is in the page (megabytes), not a link to a CDN.
        assert len(text) > 1_000_000
        assert not re.search(r"<script[^>]*\bsrc=", text)
