"""The trading pipeline end to end on the local broker, with the real broker datasets on disk."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core.broker_types import BrokerError
from stock_mlops.core.params import TradingParams
from stock_mlops.core.strategy import APPROVED, REFUSED
from stock_mlops.datasets import (
    AppendOnlyParquetDataset,
    BrokerAccountDataset,
    BrokerOrdersDataset,
)
from stock_mlops.pipelines.trading import create_pipeline
from stock_mlops.pipelines.trading.nodes import broker_request

DAY_1, DAY_2 = dt.date(2023, 6, 1), dt.date(2023, 6, 2)
NEXT = {DAY_1: "2023-06-02", DAY_2: "2023-06-05"}
ORDER_LOG_KEY = ["client_order_id", "event", "status"]


def trading_params(fill_at: str, **overrides: Any) -> TradingParams:
    return TradingParams.parse(
        {
            "broker": "local",
            "threshold": 0.005,
            "local": {
                "initial_cash": 100_000.0,
                "fill_at": fill_at,
                "allow_close_fill": fill_at == "close",
                "commission_bps": 1.0,
                "slippage_bps": 5.0,
            },
            **overrides,
        }
    )


def prediction_log(prices: pd.DataFrame, day: dt.date, returns: dict[str, float]) -> pd.DataFrame:
    closes = prices[prices["date"] == pd.Timestamp(day)].set_index("symbol")["close"]
    symbols = list(returns)
    return pd.DataFrame(
        {
            "run_id": f"inference-{day}",
            "model_version": "1",
            "team": "red",
            "symbol": symbols,
            "feature_date": pd.Timestamp(day),
            "target_date": pd.Timestamp(NEXT[day]),
            "last_close": closes[symbols].to_numpy(),
            "prediction": [closes[s] * (1 + r) for s, r in returns.items()],
            "predicted_return": list(returns.values()),
            "predicted_direction": ["up" if r > 0 else "down" for r in returns.values()],
            "created_at": pd.Timestamp(day),
        }
    )


@pytest.fixture
def workspace(tmp_path: Path) -> dict[str, str]:
    return {"filepath": str(tmp_path / "broker")}


@pytest.fixture
def log(small_prices: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(
        [
            prediction_log(small_prices, DAY_1, {"AAPL": 0.01, "MSFT": 0.03, "NVDA": -0.02}),
            prediction_log(small_prices, DAY_2, {"AAPL": 0.02, "MSFT": -0.02, "NVDA": 0.001}),
        ],
        ignore_index=True,
    )


def run(
    workspace: dict[str, str],
    prices: pd.DataFrame,
    predictions: pd.DataFrame,
    trading: TradingParams,
    run_date: dt.date,
    run_id: str,
) -> dict[str, Any]:
    """One run of the trading pipeline; returns every output that is not a broker dataset."""
    catalog = DataCatalog(
        {
            "predictions": MemoryDataset(predictions),
            "prices": MemoryDataset(prices),
            "params:trading": MemoryDataset(trading),
            "params:trading.broker": MemoryDataset(trading.broker),
            "params:team": MemoryDataset("red"),
            "params:run_date": MemoryDataset(str(run_date)),
            "run_info": MemoryDataset({"run_id": run_id, "started_at": f"{run_date}T21:30:00"}),
            "broker_account": BrokerAccountDataset(**workspace),
            "broker_orders": BrokerOrdersDataset(**workspace),
            "orders": MemoryDataset(),
            "order_events": AppendOnlyParquetDataset(
                filepath=f"{workspace['filepath']}/events.parquet", key_columns=ORDER_LOG_KEY
            ),
            "account_history": AppendOnlyParquetDataset(
                filepath=f"{workspace['filepath']}/history.parquet", key_columns=["date"]
            ),
            "order_reconciliation": MemoryDataset(),
            "account_report": MemoryDataset(),
            "account_report_html": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return {
        name: catalog.load(name)
        for name in (
            "orders",
            "order_events",
            "account_history",
            "order_reconciliation",
            "broker_orders",
            "broker_account",
            "account_report",
        )
    }


def state(workspace: dict[str, str]) -> bytes:
    return (Path(workspace["filepath"]) / "local_account.json").read_bytes()


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_a_rerun_for_the_same_date_submits_nothing_new(
    workspace: dict[str, str],
    small_prices: pd.DataFrame,
    log: pd.DataFrame,
    fill_at: str,
):
    trading = trading_params(fill_at)
    first = run(workspace, small_prices, log, trading, DAY_1, "run-1")
    ok = first["orders"][first["orders"]["status"] == APPROVED]
    assert ok[["symbol", "side"]].values.tolist() == [["MSFT", "buy"]]
    assert first["order_reconciliation"]["matches"].all()

    second_day = run(workspace, small_prices, log, trading, DAY_2, "run-2")
    ok = second_day["orders"][second_day["orders"]["status"] == APPROVED]
    assert ok[["symbol", "side"]].values.tolist() == [["MSFT", "sell"], ["AAPL", "buy"]]
    assert len(second_day["order_reconciliation"]) == 2
    assert second_day["order_reconciliation"]["matches"].all()
    after = state(workspace)
    known = set(json.loads(after)["orders"])

    rerun = run(workspace, small_prices, log, trading, DAY_2, "run-3")
    assert state(workspace) == after
    assert set(json.loads(state(workspace))["orders"]) == known
    assert (rerun["orders"]["status"] == APPROVED).sum() == 0
    # Known orders are looked up, not resubmitted, so the re-run still reconciles them.
    assert set(rerun["broker_orders"]["client_order_id"]) <= known
    assert rerun["order_reconciliation"]["matches"].all()
    if fill_at == "next_open":
        # Nothing has filled since: the same decisions come back as already submitted, which
        # the log does not repeat (their first decision is in it); they are reconciled again.
        assert rerun["orders"].empty
        reconciled = rerun["order_reconciliation"]["client_order_id"]
        assert set(reconciled) == set(ok["client_order_id"])


def test_the_account_follows_the_fills(
    workspace: dict[str, str], small_prices: pd.DataFrame, log: pd.DataFrame
):
    run(workspace, small_prices, log, trading_params("close"), DAY_1, "run-1")
    result = run(workspace, small_prices, log, trading_params("close"), DAY_2, "run-2")
    account = result["broker_account"]
    reports = result["broker_orders"].set_index("symbol")
    assert set(reports["status"]) == {"filled"}
    # Loaded after the run, the account is the one after today's orders: DAY_2 sold MSFT and
    # bought AAPL (at the close).
    assert set(account.positions) == {"AAPL"}
    history = result["account_history"]
    assert history["date"].tolist() == [pd.Timestamp(DAY_1), pd.Timestamp(DAY_2)]
    assert history["equity"].iloc[-1] == pytest.approx(account.equity)
    saved = json.loads(state(workspace))
    assert set(saved["positions"]) == {"AAPL"}
    assert saved["positions"]["AAPL"]["qty"] == reports.loc["AAPL", "filled_qty"]


def test_the_kill_switch_stops_every_order(
    workspace: dict[str, str], small_prices: pd.DataFrame, log: pd.DataFrame
):
    trading = trading_params("close", risk={"kill_switch": True})
    result = run(workspace, small_prices, log, trading, DAY_1, "run-1")
    assert set(result["orders"]["status"]) == {REFUSED}
    assert result["broker_orders"].empty
    assert result["order_reconciliation"].empty
    saved = json.loads(state(workspace))
    assert saved["orders"] == {} and saved["cash"] == 100_000.0


def test_a_broker_failure_mid_submission_changes_nothing(
    workspace: dict[str, str], small_prices: pd.DataFrame, log: pd.DataFrame, monkeypatch
):
    trading = trading_params("close")
    run(workspace, small_prices, log, trading, DAY_1, "run-1")
    BrokerAccountDataset(**workspace).save(
        broker_request(trading, small_prices, pd.Timestamp(DAY_2))
    )
    before = state(workspace)

    real_submit = LocalPaperBroker.submit_order
    calls: list[str] = []

    def flaky(self: LocalPaperBroker, order: Any) -> Any:
        calls.append(order.client_order_id)
        if len(calls) == 2:
            raise BrokerError("POST /orders: connection reset")
        return real_submit(self, order)

    monkeypatch.setattr(LocalPaperBroker, "submit_order", flaky)
    with pytest.raises(Exception, match="failed after 1 of 2 orders"):
        run(workspace, small_prices, log, trading, DAY_2, "run-2")
    assert calls == ["red-20230602-MSFT-sell", "red-20230602-AAPL-buy"]
    assert state(workspace) == before


def test_an_order_the_broker_refuses_is_flagged_by_the_reconciliation(
    workspace: dict[str, str], small_prices: pd.DataFrame, log: pd.DataFrame, monkeypatch
):
    monkeypatch.setattr(LocalPaperBroker, "_check", lambda self, record: "account restricted")
    result = run(workspace, small_prices, log, trading_params("close"), DAY_1, "run-1")
    report = result["broker_orders"].iloc[0]
    assert (report["status"], report["message"]) == ("rejected", "account restricted")
    check = result["order_reconciliation"].iloc[0]
    assert not check["matches"]
    assert check["issue"] == "broker status or quantity differs from the decision"
    saved = json.loads(state(workspace))
    assert saved["cash"] == 100_000.0 and saved["positions"] == {}
