"""AtomicDataset (never a half-written file) and AppendOnlyParquetDataset (never a lost row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.core import columns as C
from stock_mlops.datasets import AppendOnlyParquetDataset, AtomicDataset
from stock_mlops.pipelines.data_ingestion.parsers import parse_payload
from stock_mlops.sources.files import BundledSource


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """Real MSFT bars (bundled snapshot) in the ``prices`` layout."""
    return parse_payload(BundledSource().fetch("MSFT")).assign(symbol="MSFT")[C.PRICE_COLUMNS]


class HalfWritingDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Writes half of a CSV, then fails: a crash in the middle of a save."""

    def __init__(self, *, filepath: str) -> None:
        self._filepath = filepath

    def load(self) -> pd.DataFrame:
        return pd.read_csv(self._filepath)

    def save(self, data: pd.DataFrame) -> None:
        text = data.to_csv(index=False)
        Path(self._filepath).write_text(text[: len(text) // 2])
        raise OSError("disk full")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


def siblings(path: Path) -> list[str]:
    """Other files next to ``path`` (a leftover temporary file would show here)."""
    return sorted(p.name for p in path.parent.iterdir() if p != path)


# ---------------------------------------------------------------------------- AtomicDataset
@pytest.mark.parametrize(
    "dataset",
    ["pandas.ParquetDataset", {"type": "pandas.CSVDataset", "save_args": {"index": False}}],
)
def test_atomic_dataset_round_trip_leaves_no_temporary_file(tmp_path, bars, dataset):
    suffix = "parquet" if dataset == "pandas.ParquetDataset" else "csv"
    target = tmp_path / "03_primary" / f"prices.{suffix}"
    table = AtomicDataset(dataset=dataset, filepath=str(target))
    assert not table.exists()

    table.save(bars)

    assert table.exists()
    loaded = table.load()
    if suffix == "csv":
        loaded["date"] = pd.to_datetime(loaded["date"])
    pd.testing.assert_frame_equal(loaded, bars, check_dtype=False)
    assert siblings(target) == []


def test_atomic_dataset_replaces_the_file_on_a_successful_save(tmp_path, bars):
    target = tmp_path / "prices.parquet"
    table = AtomicDataset(dataset="pandas.ParquetDataset", filepath=str(target))
    table.save(bars)

    table.save(bars.iloc[:10])

    pd.testing.assert_frame_equal(table.load(), bars.iloc[:10])


def test_atomic_dataset_keeps_the_old_file_when_the_inner_save_raises(tmp_path, bars):
    target = tmp_path / "prices.parquet"
    table = AtomicDataset(dataset="pandas.ParquetDataset", filepath=str(target))
    table.save(bars)
    before = target.read_bytes()
    unwritable = bars.assign(volume=[1, "many"] * (len(bars) // 2))  # pyarrow refuses it

    with pytest.raises(DatasetError):
        table.save(unwritable)

    assert target.read_bytes() == before
    assert siblings(target) == []


def test_atomic_dataset_keeps_the_old_file_when_a_save_dies_half_way(tmp_path, bars):
    target = tmp_path / "report.csv"
    target.write_text(bars.iloc[:5].to_csv(index=False))
    before = target.read_bytes()
    table = AtomicDataset(dataset={"type": HalfWritingDataset}, filepath=str(target))

    with pytest.raises(DatasetError, match="disk full"):
        table.save(bars)

    assert target.read_bytes() == before
    assert siblings(target) == []


# ----------------------------------------------------------------- AppendOnlyParquetDataset
def prediction_rows(bars: pd.DataFrame, start: int, stop: int, version: str = "1") -> pd.DataFrame:
    """Prediction-log rows for MSFT feature dates ``bars[start:stop]`` (naive: last close)."""
    window = bars.iloc[start:stop]
    return pd.DataFrame(
        {
            "team": "red",
            C.SYMBOL: "MSFT",
            C.TARGET_DATE: window[C.DATE].dt.strftime("%Y-%m-%d").to_numpy(),
            "model_version": version,
            "prediction": window[C.CLOSE].to_numpy(),
        }
    )


KEY = ["team", C.SYMBOL, C.TARGET_DATE, "model_version"]


def test_append_only_log_appends_only_new_keys(tmp_path, bars):
    log = AppendOnlyParquetDataset(filepath=str(tmp_path / "predictions.parquet"), key_columns=KEY)
    log.save(prediction_rows(bars, 0, 10))

    revised = prediction_rows(bars, 5, 15).assign(prediction=-1.0)
    log.save(revised)

    stored = log.load()
    assert log.last_appended == 5
    assert len(stored) == 15
    assert not stored.duplicated(KEY).any()
    # Rows already logged were neither replaced nor duplicated.
    pd.testing.assert_frame_equal(stored.iloc[:10], prediction_rows(bars, 0, 10))
    pd.testing.assert_frame_equal(
        stored.iloc[10:].reset_index(drop=True), revised.iloc[5:].reset_index(drop=True)
    )


def test_append_only_log_rerun_is_a_no_op(tmp_path, bars):
    target = tmp_path / "predictions.parquet"
    log = AppendOnlyParquetDataset(filepath=str(target), key_columns=KEY)
    log.save(prediction_rows(bars, 0, 10))
    before = target.read_bytes()

    log.save(prediction_rows(bars, 0, 10))

    assert log.last_appended == 0
    assert target.read_bytes() == before


def test_append_only_log_keeps_versions_apart(tmp_path, bars):
    log = AppendOnlyParquetDataset(filepath=str(tmp_path / "p.parquet"), key_columns=KEY)
    log.save(prediction_rows(bars, 0, 10, version="1"))
    log.save(prediction_rows(bars, 0, 10, version="2"))

    assert log.load().groupby("model_version").size().to_dict() == {"1": 10, "2": 10}


@pytest.mark.parametrize(
    "change",
    [
        lambda rows: rows.assign(extra=1.0),
        lambda rows: rows.drop(columns=["prediction"]),
        lambda rows: rows[list(reversed(rows.columns))],
    ],
    ids=["extra column", "missing column", "reordered columns"],
)
def test_append_only_log_rejects_a_column_mismatch(tmp_path, bars, change):
    target = tmp_path / "predictions.parquet"
    log = AppendOnlyParquetDataset(filepath=str(target), key_columns=KEY)
    log.save(prediction_rows(bars, 0, 10))
    before = target.read_bytes()

    with pytest.raises(DatasetError, match="differ from the log"):
        log.save(change(prediction_rows(bars, 10, 20)))

    assert target.read_bytes() == before


def test_append_only_log_rejects_bad_batches(tmp_path, bars):
    log = AppendOnlyParquetDataset(filepath=str(tmp_path / "p.parquet"), key_columns=KEY)
    rows = prediction_rows(bars, 0, 10)

    with pytest.raises(DatasetError, match="repeat a key"):
        log.save(pd.concat([rows, rows.iloc[[3]]]))
    with pytest.raises(DatasetError, match="lack key columns \\['model_version'\\]"):
        log.save(rows.drop(columns=["model_version"]))
    assert not log.exists()


def test_append_only_log_needs_a_key_and_an_existing_file(tmp_path):
    with pytest.raises(DatasetError, match="at least one key column"):
        AppendOnlyParquetDataset(filepath=str(tmp_path / "p.parquet"), key_columns=[])
    log = AppendOnlyParquetDataset(filepath=str(tmp_path / "p.parquet"), key_columns=KEY)
    with pytest.raises(DatasetError, match="does not exist yet"):
        log.load()


def test_a_date_key_given_as_text_matches_the_stored_timestamp(tmp_path):
    from stock_mlops.datasets.tables import AppendOnlyParquetDataset

    dataset = AppendOnlyParquetDataset(
        filepath=str(tmp_path / "log.parquet"), key_columns=["symbol", "target_date"]
    )
    dataset.save(
        pd.DataFrame({"symbol": ["AAPL"], "target_date": [pd.Timestamp("2024-01-02")], "x": [1.0]})
    )
    dataset.save(pd.DataFrame({"symbol": ["AAPL"], "target_date": ["2024-01-02"], "x": [2.0]}))
    log = dataset.load()
    assert len(log) == 1 and log["x"].iloc[0] == 1.0


def test_new_rows_keep_the_logs_date_type(tmp_path):
    from stock_mlops.datasets.tables import AppendOnlyParquetDataset

    dataset = AppendOnlyParquetDataset(filepath=str(tmp_path / "log.parquet"), key_columns=["d"])
    dataset.save(pd.DataFrame({"d": [pd.Timestamp("2024-01-02")]}))
    dataset.save(pd.DataFrame({"d": ["2024-01-03"]}))
    log = dataset.load()
    assert pd.api.types.is_datetime64_any_dtype(log["d"])
    assert list(log["d"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


def test_columns_a_newer_version_added_widen_an_older_log(tmp_path):
    target = tmp_path / "orders.parquet"
    old = pd.DataFrame({"client_order_id": ["a"], "status": ["approved"]})
    AppendOnlyParquetDataset(filepath=str(target), key_columns=["client_order_id"]).save(old)
    log = AppendOnlyParquetDataset(
        filepath=str(target), key_columns=["client_order_id"], added_columns=["event"]
    )

    log.save(pd.DataFrame({"client_order_id": ["a", "b"], "status": ["x", "y"], "event": "e"}))

    stored = log.load()
    assert stored["client_order_id"].tolist() == ["a", "b"]
    assert stored["status"].tolist() == ["approved", "y"]  # the old row is kept as it was
    assert stored["event"].isna().tolist() == [True, False]
    with pytest.raises(DatasetError, match="differ from the log"):
        log.save(pd.DataFrame({"client_order_id": ["c"], "status": ["z"], "other": 1}))


APPENDER = """
import sys
import pandas as pd
from stock_mlops.datasets import AppendOnlyParquetDataset
path, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = AppendOnlyParquetDataset(filepath=path, key_columns=["key"])
for batch in range(start, stop, 5):
    log.save(pd.DataFrame({"key": list(range(batch, min(batch + 5, stop))), "writer": start}))
"""


def test_processes_appending_at_once_lose_and_duplicate_no_row(tmp_path):
    import os
    import subprocess
    import sys

    from helpers import PROJECT

    target = tmp_path / "log.parquet"
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    # Three writers, overlapping key ranges, 8 read-modify-write cycles each.
    ranges = [(0, 40), (20, 60), (40, 80)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(target), str(a), str(b)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a, b in ranges
    ]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()

    stored = pd.read_parquet(target)
    assert sorted(stored["key"]) == list(range(80))
    assert not stored["key"].duplicated().any()
