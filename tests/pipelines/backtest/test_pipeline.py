"""The backtest pipeline as Kedro runs it, on an in-memory catalog of real bundled prices."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from backtest_helpers import (
    TRADING,
    KeptDataset,
    NoTableStored,
    NothingStored,
    evaluation_predictions,
)
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from stock_mlops.core.params import BacktestParams
from stock_mlops.pipelines.backtest import create_pipeline


def run(
    prices: pd.DataFrame,
    evaluation: pd.DataFrame,
    backtest: BacktestParams = BacktestParams(permutation={"samples": 50}),
) -> dict:
    """Runs the whole pipeline; returns every output, intermediate ones included."""
    inputs = {
        "evaluation_predictions": evaluation,
        "prices": prices,
        "params:trading": TRADING,
        "params:backtest": backtest,
        "params:team": "blue",
    }
    pipeline = create_pipeline()
    catalog = DataCatalog({name: KeptDataset(data) for name, data in inputs.items()})
    catalog["previous_backtest_permutation"] = NothingStored()
    catalog["previous_backtest_trades"] = NoTableStored()
    catalog["previous_backtest_equity"] = NoTableStored()
    for name in pipeline.all_outputs():
        catalog[name] = KeptDataset()
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.all_outputs()}


def test_backtest_pipeline_outputs_agree_with_each_other(small_prices: pd.DataFrame):
    out = run(small_prices, evaluation_predictions(small_prices))
    trades, equity, metrics = (
        out["backtest_trades"],
        out["backtest_equity"],
        out["backtest_metrics"],
    )
    assert set(out) == {
        "backtest.backtest_plan",
        "backtest_trades",
        "backtest_equity",
        "backtest_permutation",
        "backtest_metrics",
        "backtest_metrics_mlflow",
        "backtest_equity_chart",
        "backtest_drawdown_chart",
        "backtest_report",
        "backtest_equity_plot",
    }
    # The holdout period starts the day after validation_end (2022-06-30).
    assert equity["date"].iat[0] == pd.Timestamp("2022-07-01")
    assert list(equity.columns) == ["date", "equity", "benchmark_equity"]
    assert equity["equity"].iat[0] == pytest.approx(50_000.0)
    assert set(trades["client_order_id"].str.split("-").str[0]) == {"blue"}
    assert metrics["n_trades"] == len(trades)
    assert metrics["total_return"] == pytest.approx(
        equity["equity"].iat[-1] / equity["equity"].iat[0] - 1
    )
    assert metrics["benchmark_total_return"] == pytest.approx(
        equity["benchmark_equity"].iat[-1] / 50_000.0 - 1
    )
    # Perfect foresight on three symbols beats buying and holding them.
    assert metrics["total_return"] > metrics["benchmark_total_return"]
    assert (metrics["start"], metrics["end"]) == ("2022-07-01", "2022-10-03")
    assert len(out["backtest_equity_chart"].data) == 2
    assert len(out["backtest_report"].data) == 4  # equity and drawdown, strategy and benchmark
    # Perfect foresight: no shuffle of its predictions does as well, and the page says so.
    permutation = out["backtest_permutation"]
    assert permutation["method"] == "fast_all_in"
    assert metrics["permutation_share"] == permutation["share_at_least_as_good"] == 0.0
    assert metrics["sharpe_ci_low"] < metrics["sharpe"] < metrics["sharpe_ci_high"]
    assert out["backtest_metrics_mlflow"]["sharpe"]["value"] == metrics["sharpe"]
    assert len(out["backtest_equity_plot"]) == len(equity)


def test_mirrored_foresight_loses_money(small_prices: pd.DataFrame):
    out = run(small_prices, evaluation_predictions(small_prices, -1.0))
    assert out["backtest_metrics"]["total_return"] < 0


def test_a_period_without_predictions_fails_clearly(small_prices: pd.DataFrame):
    with pytest.raises(ValueError, match="no out-of-sample predictions between 2023-01-02"):
        run(
            small_prices,
            evaluation_predictions(small_prices),
            BacktestParams(start_date=dt.date(2023, 1, 2), end_date=dt.date(2023, 3, 31)),
        )
