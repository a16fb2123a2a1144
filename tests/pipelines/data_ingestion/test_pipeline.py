"""The data_ingestion pipeline end to end on a folder of real CSV files, good and bad.

The raw-price archive (a real ``RawPriceArchiveDataset`` under ``tmp_path``) fetches the folder,
``clean_prices`` parses, validates and adjusts, and ``prices`` / ``data_quality_report`` are
written through ``AtomicDataset`` as in the project's catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import FIXTURES
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from stock_mlops.core import columns as C
from stock_mlops.core.params import DataIngestionParams
from stock_mlops.datasets import AtomicDataset, RawPriceArchiveDataset
from stock_mlops.pipelines.data_ingestion import create_pipeline
from stock_mlops.pipelines.data_ingestion.nodes import NoValidDataError

AV_DIR = FIXTURES / "prices" / "alphavantage_daily_adjusted"
CLEAN = ("AAPL", "KO", "MSFT")
# Bad file -> (symbol or file name in the report, words of the reason)
BAD = {
    "JPM.csv": ("JPM", "conflicting duplicate bars on 1 date(s): 2016-03-01"),
    "XOM.csv": ("XOM", "non-positive close on 2017-05-10"),
    "IBM.csv": ("IBM", "missing or non-numeric close on 2018-01-03, 2018-01-04"),
    "AMZN.csv": ("AMZN", "AMZN (AMZN.csv): missing required column(s) volume"),
    "NVDA.csv": ("NVDA", "low/high inconsistent with open/close on 2019-02-05"),
    "notes.txt": ("notes.txt", "not a .csv file; ignored"),
}


def real_bars(symbol: str) -> pd.DataFrame:
    """A real AlphaVantage daily-adjusted file from 2012 on (covers the 2012-10-29/30 closure
    and AAPL's 2014 and 2020 splits)."""
    frame = pd.read_csv(AV_DIR / f"DA-{symbol}-T-2021-04-21.csv")
    return frame[frame["timestamp"] >= "2012-01-01"].reset_index(drop=True)


def _row(frame: pd.DataFrame, day: str) -> int:
    """Index of the bar dated ``day``."""
    return int(frame.index[frame["timestamp"] == day][0])


def write_bad_files(folder: Path) -> None:
    """One real file per defect, plus a file that is not CSV."""
    jpm = real_bars("JPM")
    twin = jpm.iloc[[_row(jpm, "2016-03-01")]].assign(close=lambda f: f["close"] + 0.5)
    pd.concat([jpm, twin]).to_csv(folder / "JPM.csv", index=False)

    xom = real_bars("XOM")
    xom.loc[_row(xom, "2017-05-10"), "close"] = -81.2
    xom.to_csv(folder / "XOM.csv", index=False)

    ibm = real_bars("IBM")
    ibm.loc[[_row(ibm, "2018-01-03"), _row(ibm, "2018-01-04")], "close"] = None
    ibm.to_csv(folder / "IBM.csv", index=False)

    real_bars("AMZN").drop(columns=["volume"]).to_csv(folder / "AMZN.csv", index=False)

    nvda = real_bars("NVDA")
    row = _row(nvda, "2019-02-05")
    nvda.loc[row, "high"] = nvda.loc[row, ["open", "close"]].max() * 0.99
    nvda.to_csv(folder / "NVDA.csv", index=False)

    (folder / "notes.txt").write_text("prices exported from the terminal on Monday\n")


def write_clean_files(folder: Path, symbols: tuple[str, ...] | list[str] = CLEAN) -> None:
    """Real, unmodified files named ``<SYMBOL>.csv``."""
    for symbol in symbols:
        real_bars(symbol).to_csv(folder / f"{symbol}.csv", index=False)


def make_catalog(storage: Path, params: dict, run_date: str | None = None) -> DataCatalog:
    """The catalog entries of conf/base/catalog.yml for this pipeline, rooted at ``storage``."""
    return DataCatalog(
        {
            "raw_prices": RawPriceArchiveDataset(filepath=str(storage / "01_raw" / "prices")),
            "params:data_ingestion": MemoryDataset(DataIngestionParams.parse(params)),
            "params:run_date": MemoryDataset(run_date),
            "prices": AtomicDataset(
                dataset="pandas.ParquetDataset",
                filepath=str(storage / "03_primary" / "prices.parquet"),
            ),
            "data_quality_report": AtomicDataset(
                dataset={"type": "pandas.CSVDataset", "save_args": {"index": False}},
                filepath=str(storage / "08_reporting" / "data_quality_report.csv"),
            ),
        }
    )


def run(storage: Path, folder: Path, **params: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs data_ingestion on ``folder`` and reads back what it saved."""
    catalog = make_catalog(storage, {"source": "csv", "csv_dir": str(folder), **params})
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog.load("prices"), catalog.load("data_quality_report")


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    """Three clean real files, five broken ones and a text file."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    write_clean_files(folder)
    write_bad_files(folder)
    return folder


def test_pipeline_contract():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {
        "data_ingestion.build_price_request_node",
        "data_ingestion.clean_prices_node",
    }
    assert pipeline.inputs() == {"params:data_ingestion", "params:run_date"}
    assert pipeline.outputs() == {"prices", "data_quality_report"}


def test_bad_folder_clean_symbols_reach_prices_and_every_bad_file_is_reported(tmp_path, bad_folder):
    prices, report = run(tmp_path / "data", bad_folder)

    assert sorted(prices[C.SYMBOL].unique()) == list(CLEAN)
    for name, (reported_as, reason) in BAD.items():
        rows = report[report[C.SYMBOL] == reported_as]
        assert len(rows) == 1, name
        assert bool(rows["quarantined"].iloc[0]), name
        assert rows["rows_kept"].iloc[0] == 0, name
        assert reason in rows["reason"].iloc[0], (name, rows["reason"].iloc[0])
    for symbol in CLEAN:
        row = report[report[C.SYMBOL] == symbol].iloc[0]
        assert not row["quarantined"]
        assert row["rows_kept"] == (prices[C.SYMBOL] == symbol).sum() == len(real_bars(symbol))
        assert row["missing_sessions"] == 0  # 2012-10-29/30 are closures, not gaps


def test_bad_folder_no_bad_bar_reaches_prices(tmp_path, bad_folder):
    prices, _ = run(tmp_path / "data", bad_folder)

    assert not prices.duplicated([C.SYMBOL, C.DATE]).any()
    assert prices[C.OHLC + [C.VOLUME]].notna().all().all()
    assert (prices[C.OHLC] > 0).all().all() and (prices[C.VOLUME] >= 0).all()
    assert (prices[C.LOW] <= prices[[C.OPEN, C.CLOSE]].min(axis=1) * (1 + 1e-12)).all()
    assert (prices[C.HIGH] >= prices[[C.OPEN, C.CLOSE]].max(axis=1) * (1 - 1e-12)).all()
    # AAPL arrives split-adjusted: continuous across 2020-08-31.
    aapl = prices[prices[C.SYMBOL] == "AAPL"].set_index(C.DATE)[C.CLOSE]
    assert 0.85 < aapl["2020-08-31"] / aapl["2020-08-28"] < 1.15


def test_unknown_symbol_is_reported_and_skipped(tmp_path, bad_folder):
    prices, report = run(tmp_path / "data", bad_folder, symbols=["AAPL", "MSFT", "ZZZZ"])

    assert sorted(prices[C.SYMBOL].unique()) == ["AAPL", "MSFT"]
    unknown = report[report[C.SYMBOL] == "ZZZZ"].iloc[0]
    assert unknown["stage"] == "fetch" and unknown["quarantined"]
    assert "symbol 'ZZZZ' has no CSV file" in unknown["reason"]


def test_all_symbols_bad_raises_one_error_naming_each(tmp_path):
    folder = tmp_path / "only_bad"
    folder.mkdir()
    write_bad_files(folder)

    with pytest.raises(NoValidDataError) as info:
        run(tmp_path / "data", folder)

    for reported_as, reason in BAD.values():
        assert f"{reported_as}: " in str(info.value)
        assert reason in str(info.value)


def test_failed_run_leaves_the_previous_prices_untouched(tmp_path, bad_folder):
    storage = tmp_path / "data"
    run(storage, bad_folder)
    saved = storage / "03_primary" / "prices.parquet"
    report_file = storage / "08_reporting" / "data_quality_report.csv"
    before = saved.read_bytes(), report_file.read_bytes()

    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    write_bad_files(only_bad)
    with pytest.raises(NoValidDataError):
        run(storage, only_bad)

    assert (saved.read_bytes(), report_file.read_bytes()) == before
    leftovers = [p.name for p in saved.parent.iterdir() if p.name != saved.name]
    assert leftovers == []


def test_a_corrected_file_is_accepted_on_the_next_run(tmp_path, bad_folder):
    storage = tmp_path / "data"
    _, report = run(storage, bad_folder)
    assert report[report[C.SYMBOL] == "AMZN"]["quarantined"].iloc[0]

    write_clean_files(bad_folder, ["AMZN"])
    prices, report = run(storage, bad_folder)

    assert not report[report[C.SYMBOL] == "AMZN"]["quarantined"].iloc[0]
    assert (prices[C.SYMBOL] == "AMZN").sum() == len(real_bars("AMZN"))
    # The broken object stays in the immutable archive next to the corrected one.
    archived = sorted((storage / "01_raw" / "prices" / "csv" / "AMZN").glob("*.csv"))
    assert len(archived) == 2
