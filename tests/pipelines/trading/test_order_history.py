"""The orders log's status history, the account history and the account report, through the
real pipeline on the real datasets (the orders log written through both of its entries)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_mlops.core.broker_types import AccountSnapshot, Clock, OrderReport
from stock_mlops.core.params import TradingParams
from stock_mlops.datasets import (
    AppendOnlyParquetDataset,
    AtomicDataset,
    BrokerAccountDataset,
    BrokerOrdersDataset,
)
from stock_mlops.pipelines.trading import create_pipeline
from stock_mlops.pipelines.trading.nodes import lifecycle_events, record_order_events
from stock_mlops.pipelines.trading.report import decision_sentence

DAYS = [dt.date(2023, 6, d) for d in (1, 2, 5, 6, 7)]
KEY = ["client_order_id", "event", "status"]
TRADING = TradingParams.parse(
    {
        "threshold": 0.005,
        # A buffer so that an all-in buy decided at the close is fully funded at the next open.
        "risk": {"min_cash_buffer": 0.05},
        "local": {"fill_at": "next_open", "slippage_bps": 5.0},
    }
)


def predictions(prices: pd.DataFrame) -> pd.DataFrame:
    """Red's log: MSFT +3% on day 1, AAPL +2% and MSFT -2% on day 2, little on day 3."""
    returns = [
        {"AAPL": 0.001, "MSFT": 0.03, "NVDA": -0.001},
        {"AAPL": 0.02, "MSFT": -0.02, "NVDA": 0.001},
        {"AAPL": 0.0022, "MSFT": 0.001, "NVDA": -0.003},
        {"AAPL": 0.002, "MSFT": 0.015, "NVDA": 0.0},
        {"AAPL": 0.001, "MSFT": 0.002, "NVDA": 0.003},
    ]
    rows = []
    targets = [*DAYS[1:], dt.date(2023, 6, 8)]
    for day, target, by_symbol in zip(DAYS, targets, returns, strict=True):
        closes = prices[prices["date"] == pd.Timestamp(day)].set_index("symbol")["close"]
        for symbol, r in by_symbol.items():
            rows.append(
                {
                    "run_id": "inference",
                    "model_version": "1",
                    "team": "red",
                    "symbol": symbol,
                    "feature_date": pd.Timestamp(day),
                    "target_date": pd.Timestamp(target),
                    "last_close": closes[symbol],
                    "prediction": closes[symbol] * (1 + r),
                    "predicted_return": r,
                    "predicted_direction": "up" if r > 0 else "down",
                    "created_at": pd.Timestamp(day) + pd.Timedelta(hours=22),
                }
            )
    return pd.DataFrame(rows)


class Storage:
    def __init__(self, root: Path, prices: pd.DataFrame) -> None:
        self.root = root
        self.prices = prices
        self.predictions = predictions(prices)

    def catalog(self, day: dt.date, run_id: str) -> DataCatalog:
        broker = {"filepath": str(self.root / "broker")}
        log = {"filepath": str(self.root / "orders.parquet"), "key_columns": KEY}
        inputs = {
            "predictions": self.predictions,
            "prices": self.prices,
            "params:trading": TRADING,
            "params:trading.broker": "local",
            "params:team": "red",
            "params:run_date": str(day),
            "run_info": {"run_id": run_id, "started_at": f"{day}T21:30:00+00:00"},
        }
        catalog = DataCatalog({k: MemoryDataset(v) for k, v in inputs.items()})
        catalog["broker_account"] = BrokerAccountDataset(**broker)
        catalog["broker_orders"] = BrokerOrdersDataset(**broker)
        catalog["orders"] = AppendOnlyParquetDataset(**log)
        catalog["order_events"] = AppendOnlyParquetDataset(**log)
        catalog["account_history"] = AppendOnlyParquetDataset(
            filepath=str(self.root / "account_history.parquet"), key_columns=["date"]
        )
        catalog["account_report"] = AtomicDataset(
            dataset={"type": "pandas.CSVDataset", "save_args": {"index": False}},
            filepath=str(self.root / "account_report.csv"),
        )
        catalog["account_report_html"] = AtomicDataset(
            dataset="text.TextDataset", filepath=str(self.root / "account_report.html")
        )
        return catalog

    def run(self, day: dt.date, run_id: str, **slice_: Any) -> None:
        pipeline = create_pipeline()
        if slice_:
            pipeline = pipeline.to_nodes(*slice_["to_nodes"])
        SequentialRunner().run(pipeline, self.catalog(day, run_id))

    def log(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "orders.parquet")

    def history(self) -> pd.DataFrame:
        return pd.read_parquet(self.root / "account_history.parquet")

    def report(self) -> pd.DataFrame:
        return pd.read_csv(self.root / "account_report.csv")


@pytest.fixture
def storage(tmp_path: Path, small_prices: pd.DataFrame) -> Storage:
    return Storage(tmp_path, small_prices)


def events_of(log: pd.DataFrame, client_order_id: str) -> list[tuple[str, str]]:
    rows = log[log["client_order_id"] == client_order_id]
    return list(zip(rows["event"], rows["status"], strict=True))


def test_each_order_carries_its_status_history_and_a_rerun_adds_nothing(storage):
    storage.run(DAYS[0], "run-1")
    log = storage.log()
    bought = "red-20230601-MSFT-buy"
    assert events_of(log, bought) == [
        ("decided", "approved"),
        ("submitted", "submitted"),
        ("accepted", "accepted"),
    ]
    first = log.copy()

    storage.run(DAYS[0], "run-2")  # the same day again
    pd.testing.assert_frame_equal(storage.log(), first)
    assert storage.history()["date"].tolist() == [pd.Timestamp(DAYS[0])]

    storage.run(DAYS[1], "run-3")  # yesterday's order fills at today's open
    log = storage.log()
    assert events_of(log, bought)[-1] == ("filled", "filled")
    filled = log[(log["client_order_id"] == bought) & (log["event"] == "filled")].iloc[0]
    prices = storage.prices
    msft = prices[(prices["symbol"] == "MSFT") & (prices["date"] == pd.Timestamp(DAYS[1]))]
    open_price = msft["open"].iloc[0]
    assert filled["filled_avg_price"] == pytest.approx(open_price * 1.0005)
    assert filled["event_at"].tz_convert("America/New_York").date() == DAYS[1]
    assert not log.duplicated(KEY).any()
    assert storage.history()["date"].tolist() == [pd.Timestamp(d) for d in DAYS[:2]]


def test_a_run_killed_between_deciding_and_submitting_is_visible_and_resumed(storage):
    storage.run(DAYS[0], "run-1")
    # Killed after the decisions were logged, before anything reached the broker ...
    storage.run(DAYS[1], "run-2", to_nodes=["trading.record_decisions_node"])
    log = storage.log()
    day2 = log[log["decision_date"] == pd.Timestamp(DAYS[1])]
    assert set(day2["event"]) == {"decided"} and (day2["status"] == "approved").sum() == 2
    # ... then run again for the same day: one decision row per order, now submitted.
    storage.run(DAYS[1], "run-3")
    log = storage.log()
    assert not log.duplicated(KEY).any()
    for cid in ("red-20230602-MSFT-sell", "red-20230602-AAPL-buy"):
        assert events_of(log, cid)[:2] == [("decided", "approved"), ("submitted", "submitted")]

    storage.run(DAYS[2], "run-4")
    storage.run(DAYS[3], "run-5", to_nodes=["trading.record_decisions_node"])  # killed again
    storage.run(DAYS[4], "run-6")  # the next run is a later day: day 4 is not resubmitted
    report = storage.report()
    decisions = report[report["section"] == "decision"]
    sentences = dict(zip(decisions["date"], decisions["text"], strict=True))
    assert re.fullmatch(
        r"ordered buy (\d+) MSFT \(predicted \+3.00%\): filled \1 at [\d.]+ on 2023-06-02",
        sentences["2023-06-01"],
    )
    assert sentences["2023-06-05"] == (
        "no order: the largest predicted return, 0.22% on AAPL, is below the 0.50% threshold"
    )
    assert sentences["2023-06-06"].endswith(
        "never submitted (the run stopped between deciding and submitting)"
    )
    assert not storage.log().duplicated(KEY).any()


def test_the_account_report_comes_from_the_broker(storage):
    for i, day in enumerate(DAYS[:3]):
        storage.run(day, f"run-{i}")
    report = storage.report()
    account = report[report["section"] == "account"].iloc[0]
    positions = report[report["section"] == "position"]
    history = storage.history().iloc[-1]
    assert account["cash"] == pytest.approx(history["cash"])
    assert account["equity"] == pytest.approx(history["equity"])
    assert account["buying_power"] == pytest.approx(account["cash"])
    assert account["equity"] == pytest.approx(account["cash"] + positions["market_value"].sum())
    for row in positions.itertuples():
        assert row.market_value == pytest.approx(row.qty * row.price)
        assert row.unrealized_pl == pytest.approx((row.price - row.avg_price) * row.qty)
    fills = report[report["section"] == "fill"]
    assert set(fills["client_order_id"]) >= {"red-20230601-MSFT-buy"}
    assert {"cash", "equity", "symbol", "qty", "market_value", "unrealized_pl"} <= set(report)
    assert report["section"].tolist().count("decision") == 3
    assert not report.loc[report["section"] == "open_order"].empty or not positions.empty


def snapshot_with(orders: tuple[OrderReport, ...]) -> AccountSnapshot:
    clock = Clock(dt.datetime(2023, 6, 2, 21, tzinfo=dt.UTC), True, dt.date(2023, 6, 5))
    return AccountSnapshot("alpaca", 1000.0, {}, clock, as_of=dt.date(2023, 6, 2), orders=orders)


def report(status: str, filled: float, **extra: Any) -> OrderReport:
    return OrderReport(
        client_order_id=extra.pop("cid", "red-20230601-AAPL-buy"),
        broker_order_id="b-1",
        symbol="AAPL",
        side="buy",
        qty=10.0,
        status=status,
        filled_qty=filled,
        filled_avg_price=180.0 if filled else None,
        submitted_at="2023-06-01T20:30:00Z",
        filled_at="2023-06-02T13:30:05.123Z" if filled or status in ("canceled",) else None,
        **extra,
    )


@pytest.mark.parametrize(
    ("status", "filled", "events"),
    [
        ("new", 0.0, ["submitted"]),
        ("accepted", 0.0, ["submitted", "accepted"]),
        ("rejected", 0.0, ["submitted", "rejected"]),
        ("partially_filled", 4.0, ["submitted", "accepted", "partially_filled"]),
        ("filled", 10.0, ["submitted", "accepted", "filled"]),
        ("expired", 4.0, ["submitted", "accepted", "partially_filled", "expired"]),
        ("canceled", 0.0, ["submitted", "accepted", "canceled"]),
    ],
)
def test_a_broker_report_implies_its_status_history(status, filled, events):
    assert [e for e, _ in lifecycle_events(report(status, filled))] == events


def test_order_events_keep_the_teams_orders_with_broker_times():
    reports = (report("filled", 10.0), report("accepted", 0.0, cid="blue-20230601-AAPL-buy"))
    rows = record_order_events(
        pd.DataFrame(columns=["client_order_id"]),
        snapshot_with(reports),
        {"run_id": "r"},
        "red",
        "alpaca",
    )
    assert set(rows["client_order_id"]) == {"red-20230601-AAPL-buy"}
    filled = rows[rows["event"] == "filled"].iloc[0]
    assert filled["event_at"] == pd.Timestamp("2023-06-02T13:30:05.123Z")
    assert filled["decision_date"] == pd.Timestamp("2023-06-01")
    assert filled["target_date"] == pd.Timestamp("2023-06-02")
    assert (rows["status"] == rows["event"]).all()


def test_a_decision_day_without_an_order_says_why():
    day = pd.Timestamp("2023-06-05")
    log = pd.DataFrame(columns=["client_order_id", "event", "status", "decision_date"]).astype(
        {"decision_date": "datetime64[ns]"}
    )
    rows = pd.DataFrame(
        {
            "symbol": ["AAPL", "NVDA"],
            "predicted_return": [-0.004, 0.0022],
            "predicted_direction": "up",
        }
    )
    assert decision_sentence(day, log, rows, TRADING) == (
        "no order: the largest predicted return, 0.22% on NVDA, is below the 0.50% threshold"
    )
    assert decision_sentence(day, log, rows.iloc[0:0], TRADING) == (
        "no order: no usable prediction from the 2023-06-05 closes"
    )


@pytest.mark.browser
def test_the_account_report_page_shows_the_account_offline(storage, browser):
    for i, day in enumerate(DAYS[:3]):
        storage.run(day, f"run-{i}")
    page = storage.root / "account_report.html"

    browser.open(page.as_uri(), wait_css="#title")

    assert browser.assert_visible("#title")[0]["text"] == "Account report: team red"
    cards = browser.assert_visible("#summary .card")
    assert [c["text"].split("\n")[0] for c in cards] == [
        "Cash",
        "Buying power",
        "Positions",
        "Equity",
    ]
    positions = browser.assert_visible("#positions tbody tr")
    assert positions and positions[0]["text"].startswith("AAPL")
    assert browser.assert_visible("#fills tbody tr")
    decisions = browser.assert_visible("#decisions li")
    assert len(decisions) == 3
    assert "below the 0.50% threshold" in decisions[0]["text"]
    assert browser.nonlocal_requests() == []
