"""The backtest replays only when its inputs changed: what the fingerprint covers, and the
pipeline on stored files keeping them untouched on a day whose inputs are the same."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from backtest_helpers import TRADING, KeptDataset, evaluation_predictions
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.datasets import AtomicDataset, EarlierRunDataset
from stock_mlops.pipelines.backtest import create_pipeline
from stock_mlops.pipelines.backtest.nodes import backtest_predictions
from stock_mlops.pipelines.backtest.planning import (
    FINGERPRINT_KEY,
    TABLES_KEY,
    inputs_fingerprint,
    plan,
)

BACKTEST = BacktestParams(permutation={"samples": 20})


@pytest.fixture
def predictions(small_prices: pd.DataFrame) -> pd.DataFrame:
    return backtest_predictions(evaluation_predictions(small_prices), BACKTEST)


def fingerprint(predictions, prices, trading=TRADING, backtest=BACKTEST, team="blue") -> str:
    return inputs_fingerprint(predictions, prices, trading, backtest, team)


def test_the_same_inputs_give_the_same_fingerprint(predictions, small_prices):
    shuffled = small_prices.sample(frac=1.0, random_state=3)  # row order is not an input
    assert fingerprint(predictions, small_prices) == fingerprint(predictions, shuffled)


def test_bars_outside_the_replayed_sessions_do_not_count(predictions, small_prices):
    """The daily loop's new bar falls after the period: the stored results still hold."""
    # The period's decisions end 2022-09-30; its last session is the one after (2022-10-03).
    later = small_prices["date"] > pd.Timestamp("2022-10-03")
    earlier = small_prices["date"] < predictions["feature_date"].min()
    assert later.any() and earlier.any()
    base = fingerprint(predictions, small_prices)
    assert fingerprint(predictions, small_prices[~later]) == base
    assert fingerprint(predictions, small_prices[~earlier]) == base
    edited = small_prices.copy()
    edited.loc[later, "close"] *= 2
    assert fingerprint(predictions, edited) == base


def test_what_the_replay_reads_changes_the_fingerprint(predictions, small_prices):
    base = fingerprint(predictions, small_prices)
    in_period = small_prices["date"] == pd.Timestamp("2022-08-15")
    edited = small_prices.copy()
    edited.loc[in_period & (edited["symbol"] == edited["symbol"].iloc[0]), "open"] += 0.01
    assert fingerprint(predictions, edited) != base
    last_session = small_prices[small_prices["date"] != pd.Timestamp("2022-10-03")]
    assert fingerprint(predictions, last_session) != base  # the fill of the last orders
    moved = predictions.assign(prediction=predictions["prediction"] * 1.001)
    assert fingerprint(moved, small_prices) != base
    costlier = TradingParams.parse(
        {"local": {"initial_cash": 50_000.0, "fill_at": "next_open", "slippage_bps": 6.0}}
    )
    assert fingerprint(predictions, small_prices, trading=costlier) != base
    more = BacktestParams(permutation={"samples": 21})
    assert fingerprint(predictions, small_prices, backtest=more) != base
    assert fingerprint(predictions, small_prices, team="red") != base


def test_the_plan_replays_unless_the_document_has_this_fingerprint_and_the_stored_tables():
    stored = {FINGERPRINT_KEY: "abc", TABLES_KEY: "t1"}
    assert not plan("abc", stored, "t1").due
    assert plan("abc", None, "t1").due
    assert plan("abc", {"method": "fast_all_in"}, "t1").due  # written before fingerprints
    assert plan("abd", stored, "t1").due
    assert plan("abc", stored, "t2").due  # the tables were rewritten after the document
    assert plan("abc", stored, None).due  # a table is missing


class StoredBacktest:
    """The backtest pipeline on a catalog whose trades, equity and permutation are files."""

    STORED = ("backtest_trades", "backtest_equity", "backtest_permutation")

    def __init__(self, root, prices: pd.DataFrame, evaluation: pd.DataFrame) -> None:
        self.root, self.prices, self.evaluation = root, prices, evaluation
        self.paths = {
            "backtest_trades": root / "backtest_trades.parquet",
            "backtest_equity": root / "backtest_equity.parquet",
            "backtest_permutation": root / "backtest_permutation.json",
        }

    def run(self) -> dict:
        pipeline = create_pipeline()
        parquet, document = "pandas.ParquetDataset", "json.JSONDataset"
        catalog = DataCatalog(
            {
                "evaluation_predictions": KeptDataset(self.evaluation),
                "prices": KeptDataset(self.prices),
                "params:trading": KeptDataset(TRADING),
                "params:backtest": KeptDataset(BACKTEST),
                "params:team": KeptDataset("blue"),
                "previous_backtest_permutation": EarlierRunDataset(
                    filepath=str(self.paths["backtest_permutation"]), file_format="json"
                ),
                "previous_backtest_trades": EarlierRunDataset(
                    filepath=str(self.paths["backtest_trades"]), file_format="parquet"
                ),
                "previous_backtest_equity": EarlierRunDataset(
                    filepath=str(self.paths["backtest_equity"]), file_format="parquet"
                ),
                **{
                    name: AtomicDataset(
                        dataset=document if name == "backtest_permutation" else parquet,
                        filepath=str(path),
                    )
                    for name, path in self.paths.items()
                },
            }
        )
        for name in pipeline.all_outputs() - set(self.STORED):
            catalog[name] = KeptDataset()
        SequentialRunner().run(pipeline, catalog)
        return {name: catalog.load(name) for name in pipeline.all_outputs()}

    def stamps(self) -> dict[str, tuple[int, bytes]]:
        return {n: (p.stat().st_mtime_ns, p.read_bytes()) for n, p in self.paths.items()}


def test_a_run_on_the_same_inputs_keeps_the_stored_results(tmp_path, small_prices):
    stored = StoredBacktest(tmp_path, small_prices, evaluation_predictions(small_prices))
    first = stored.run()
    assert first["backtest.backtest_plan"].due
    document = json.loads(stored.paths["backtest_permutation"].read_text())
    assert document[FINGERPRINT_KEY] == first["backtest.backtest_plan"].fingerprint
    before = stored.stamps()

    # The next day: one more bar for every symbol, after the period.
    next_day = small_prices[small_prices["date"] == small_prices["date"].max()].assign(
        date=pd.Timestamp("2024-01-02")
    )
    stored.prices = pd.concat([small_prices, next_day], ignore_index=True)
    second = stored.run()
    assert not second["backtest.backtest_plan"].due
    assert stored.stamps() == before
    # What is rebuilt from the stored tables is what the replay gave.
    assert second["backtest_metrics"] == first["backtest_metrics"]
    assert second["backtest_equity_plot"].equals(first["backtest_equity_plot"])


def test_changed_inputs_or_a_missing_document_replay(tmp_path, small_prices):
    stored = StoredBacktest(tmp_path, small_prices, evaluation_predictions(small_prices))
    stored.run()
    # A retrain: the mirrored model's predictions replace the stored ones.
    stored.evaluation = evaluation_predictions(small_prices, -1.0)
    replayed = stored.run()
    assert replayed["backtest.backtest_plan"].due
    assert replayed["backtest_metrics"]["total_return"] < 0
    stamp = stored.paths["backtest_trades"].stat().st_mtime_ns
    stored.paths["backtest_permutation"].unlink()
    assert stored.run()["backtest.backtest_plan"].due
    assert stored.paths["backtest_trades"].stat().st_mtime_ns > stamp


def test_tables_a_stopped_replay_rewrote_are_replayed_again(tmp_path, small_prices):
    """A replay for other inputs that stopped after writing the tables, before the document:
    the document's fingerprint matches the old inputs again, but not the tables beside it."""
    perfect = evaluation_predictions(small_prices)
    stored = StoredBacktest(tmp_path, small_prices, perfect)
    first = stored.run()
    first_equity = pd.read_parquet(stored.paths["backtest_equity"])
    (tmp_path / "other").mkdir()
    mirrored = evaluation_predictions(small_prices, -1.0)
    other = StoredBacktest(tmp_path / "other", small_prices, mirrored)
    other.run()
    for name in ("backtest_trades", "backtest_equity"):
        stored.paths[name].write_bytes(other.paths[name].read_bytes())

    again = stored.run()

    assert again["backtest.backtest_plan"].due
    assert again["backtest_metrics"] == first["backtest_metrics"]
    pd.testing.assert_frame_equal(pd.read_parquet(stored.paths["backtest_equity"]), first_equity)


def test_a_lost_table_is_replayed_not_reported_from_the_document(tmp_path, small_prices):
    stored = StoredBacktest(tmp_path, small_prices, evaluation_predictions(small_prices))
    first = stored.run()
    stored.paths["backtest_equity"].unlink()
    again = stored.run()
    assert again["backtest.backtest_plan"].due
    assert again["backtest_metrics"] == first["backtest_metrics"]
    assert not stored.run()["backtest.backtest_plan"].due
