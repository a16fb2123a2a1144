"""Nodes of data_ingestion: the request built from parameters, and clean_prices on real payloads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES, raw_batch
from helpers import make_payload as payload

from stock_mlops.core import columns as C
from stock_mlops.core.params import DataIngestionParams, ParameterError
from stock_mlops.pipelines.data_ingestion.nodes import (
    REPORT_COLUMNS,
    NoValidDataError,
    RunDateError,
    build_price_request,
    clean_prices,
)
from stock_mlops.sources.base import ArchivedPrices, FetchFailure, PriceRequest, RawPayload
from stock_mlops.sources.files import BundledSource

AV_DIR = FIXTURES / "prices" / "alphavantage_daily_adjusted"
AV_JSON = FIXTURES / "alphavantage" / "AAPL_TIME_SERIES_DAILY_ADJUSTED_compact_2023-03-24.json"


def batch(
    payloads: dict[str, list[RawPayload]], failures: tuple[FetchFailure, ...] | list = ()
) -> ArchivedPrices:
    """What ``clean_prices`` receives as ``raw_prices`` for a ``csv`` fetch."""
    return ArchivedPrices(
        request=PriceRequest(source="csv", symbols=tuple(sorted(payloads))),
        fetched_at="20240102T000000000000Z",
        payloads=payloads,
        failures=list(failures),
    )


def edit_csv(content: bytes, row: int, column: int, value: str) -> bytes:
    """The CSV with one cell replaced (row 0 is the first data row)."""
    header, *rows = content.decode().splitlines()
    cells = rows[row].split(",")
    cells[column] = value
    rows[row] = ",".join(cells)
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.fixture(scope="module")
def snapshot() -> dict[str, bytes]:
    """Real CSV bytes of three bundled symbols."""
    source = BundledSource()
    return {s: source.fetch(s).content for s in ("AAPL", "MSFT", "NVDA")}


def report_row(report: pd.DataFrame, symbol: str) -> pd.Series:
    """The single report row of ``symbol``."""
    rows = report[report[C.SYMBOL] == symbol]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# ------------------------------------------------------------------------ build_price_request
def test_build_price_request_defaults_to_the_bundled_snapshot():
    request = build_price_request(DataIngestionParams(), None)
    assert request.to_dict() == {
        "source": "bundled",
        "symbols": [],
        "as_of": None,
        "settings": {"universe": "mag7"},
    }
    dated = build_price_request(DataIngestionParams(), "2023-07-03")
    assert dated.as_of == dt.date(2023, 7, 3)
    assert PriceRequest.from_dict(dated.to_dict()) == dated


def test_build_price_request_for_a_csv_folder_normalises_symbols(tmp_path):
    request = build_price_request(
        DataIngestionParams.parse(
            {
                "source": "csv",
                "csv_dir": str(tmp_path),
                "csv_symbol_regex": r"DA-(?P<symbol>[A-Z]+)-T-.*\.csv",
                "symbols": "aapl msft",
            }
        ),
        None,
    )
    assert PriceRequest.from_dict(request.to_dict()) == request
    assert request.to_dict() == {
        "source": "csv",
        "symbols": ["AAPL", "MSFT"],
        "as_of": None,
        "settings": {
            "csv_dir": str(tmp_path),
            "csv_symbol_regex": r"DA-(?P<symbol>[A-Z]+)-T-.*\.csv",
        },
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"source": "csv"}, "needs data_ingestion.csv_dir"),
        ({"source": "alphavantage"}, "needs data_ingestion.symbols"),
        ({"source": "yahoo"}, "data_ingestion.source"),
        ({"symbol": ["AAPL"]}, "data_ingestion.symbol"),
        ({"symbols": ["AAPL", "aapl"]}, "duplicate symbols"),
    ],
)
def test_ingestion_parameters_reject_bad_values(params, message):
    with pytest.raises(ParameterError, match=message):
        DataIngestionParams.parse(params, "data_ingestion")


# ------------------------------------------------------------------------------ clean_prices
def test_clean_prices_keeps_every_clean_symbol(snapshot):
    prices, report = clean_prices(raw_batch(), DataIngestionParams(), None)

    assert list(prices.columns) == C.PRICE_COLUMNS
    assert sorted(prices[C.SYMBOL].unique()) == ["AAPL", "MSFT", "NVDA"]
    assert not prices.duplicated([C.SYMBOL, C.DATE]).any()
    assert prices.equals(prices.sort_values([C.SYMBOL, C.DATE]).reset_index(drop=True))
    assert list(report.columns) == REPORT_COLUMNS
    assert not report["quarantined"].any()
    for symbol, content in snapshot.items():
        row = report_row(report, symbol)
        n_rows = len(content.decode().splitlines()) - 1
        assert row["rows_in"] == row["rows_kept"] == n_rows
        assert (row["first_date"], row["last_date"]) == ("2013-01-02", "2023-12-29")
    # The snapshot is already split-adjusted: values pass through unchanged.
    first = snapshot["MSFT"].decode().splitlines()[1].split(",")
    msft = prices[prices[C.SYMBOL] == "MSFT"].iloc[0]
    assert msft[C.CLOSE] == float(first[4]) and msft[C.VOLUME] == float(first[5])


def test_clean_prices_adjusts_alphavantage_bars():
    content = (AV_DIR / "DA-AAPL-T-2021-04-21.csv").read_bytes()
    raw = batch({"AAPL": [payload("AAPL", content, fmt="alphavantage-csv")]})

    prices, report = clean_prices(raw, DataIngestionParams(), None)

    close = prices.set_index(C.DATE)[C.CLOSE]
    assert close["2020-08-28"] == pytest.approx(124.405824223)  # adjusted, not 499.23
    assert 0.85 < close["2020-08-31"] / close["2020-08-28"] < 1.15
    assert not report_row(report, "AAPL")["quarantined"]


def test_clean_prices_reads_alphavantage_json():
    raw = batch({"AAPL": [payload("AAPL", AV_JSON.read_bytes(), fmt="alphavantage-json")]})

    prices, _ = clean_prices(raw, DataIngestionParams(), None)

    assert len(prices) == 100
    assert prices[C.CLOSE].iloc[-1] == 160.25
    assert prices[C.VOLUME].iloc[-1] == 59256343


def test_a_bad_symbol_is_quarantined_whole_and_the_rest_kept(snapshot):
    bad = edit_csv(snapshot["NVDA"], 500, 4, "-3.5")
    raw = batch(
        {
            "AAPL": [payload("AAPL", snapshot["AAPL"])],
            "NVDA": [payload("NVDA", bad)],
        }
    )

    prices, report = clean_prices(raw, DataIngestionParams(), None)

    assert set(prices[C.SYMBOL]) == {"AAPL"}
    row = report_row(report, "NVDA")
    assert row["quarantined"] and row["rows_kept"] == 0 and row["stage"] == "validate"
    assert "non-positive close on 2014-12-26" in row["reason"]


def test_unrecorded_split_quarantines_the_raw_series():
    raw_only = pd.read_csv(AV_DIR / "DA-AAPL-T-2021-04-21.csv")
    raw_only = raw_only[raw_only["timestamp"] >= "2019-01-01"]
    content = raw_only.drop(columns=["adjusted_close", "split_coefficient"]).to_csv(index=False)
    msft = (AV_DIR / "DA-MSFT-T-2021-04-21.csv").read_bytes()
    raw = batch({"AAPL": [payload("AAPL", content.encode())], "MSFT": [payload("MSFT", msft)]})

    prices, report = clean_prices(raw, DataIngestionParams(), None)

    assert set(prices[C.SYMBOL]) == {"MSFT"}
    assert "unrecorded split: 2020-08-31" in report_row(report, "AAPL")["reason"]


def test_fetch_failures_and_parse_errors_are_reported(snapshot):
    raw = batch(
        {
            "AAPL": [payload("AAPL", snapshot["AAPL"])],
            "MSFT": [payload("MSFT", b"Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1.5\n")],
        },
        failures=[FetchFailure("ZZZZ", "csv", "symbol 'ZZZZ' has no CSV file in 'in'")],
    )

    prices, report = clean_prices(raw, DataIngestionParams(), None)

    assert set(prices[C.SYMBOL]) == {"AAPL"}
    fetch = report_row(report, "ZZZZ")
    assert fetch["stage"] == "fetch" and fetch["quarantined"]
    parse = report_row(report, "MSFT")
    assert parse["stage"] == "parse" and parse["quarantined"]
    assert parse["reason"] == "MSFT (MSFT.csv): missing required column(s) volume"


def test_all_symbols_bad_raises_one_error_naming_each(snapshot):
    raw = batch(
        {
            "AAPL": [payload("AAPL", b"")],
            "MSFT": [payload("MSFT", edit_csv(snapshot["MSFT"], 7, 4, ""))],
        },
        failures=[FetchFailure("ZZZZ", "csv", "no CSV file")],
    )

    with pytest.raises(NoValidDataError) as info:
        clean_prices(raw, DataIngestionParams(), None)

    message = str(info.value)
    assert "AAPL: AAPL (AAPL.csv): the file is empty" in message
    assert "MSFT: missing or non-numeric close on 2013-01-11" in message
    assert "ZZZZ: no CSV file" in message


def test_a_symbol_far_behind_the_run_date_is_stale(snapshot):
    header, *lines = snapshot["AAPL"].splitlines()
    cut = b"\n".join([header, *(line for line in lines if line[:7] < b"2023-12")])
    raw = batch(
        {"AAPL": [payload("AAPL", cut + b"\n")], "MSFT": [payload("MSFT", snapshot["MSFT"])]}
    )
    prices, report = clean_prices(raw, DataIngestionParams(), "2023-12-29")
    aapl = report_row(report, "AAPL")
    assert aapl["quarantined"] and "stale: last bar 2023-11-30" in aapl["reason"]
    assert set(prices["symbol"]) == {"MSFT"}


def test_a_mistyped_future_date_does_not_make_other_symbols_stale(snapshot):
    typo = snapshot["MSFT"].replace(b"2023-12-29,", b"2099-12-29,")
    raw = batch({"AAPL": [payload("AAPL", snapshot["AAPL"])], "MSFT": [payload("MSFT", typo)]})

    prices, report = clean_prices(raw, DataIngestionParams(), None)

    assert set(prices[C.SYMBOL]) == {"AAPL"}
    assert "days NYSE was closed: 2099-12-29" in report_row(report, "MSFT")["reason"]
    assert not report_row(report, "AAPL")["quarantined"]


def test_start_date_and_min_rows(snapshot):
    raw = batch({"AAPL": [payload("AAPL", snapshot["AAPL"])]})

    prices, _ = clean_prices(raw, DataIngestionParams(start_date=dt.date(2023, 1, 1)), None)
    assert prices[C.DATE].min() == pd.Timestamp("2023-01-03")

    with pytest.raises(NoValidDataError, match="fewer than min_rows=60"):
        clean_prices(raw, DataIngestionParams(start_date=dt.date(2023, 11, 1)), None)


def test_a_corrected_file_supersedes_the_broken_one_archived_before(snapshot):
    broken = payload("AAPL", b"not,a,price,file\n1,2,3,4\n")
    fixed = payload("AAPL", snapshot["AAPL"])

    prices, report = clean_prices(batch({"AAPL": [broken, fixed]}), DataIngestionParams(), None)

    assert len(prices) == 2768
    assert not report_row(report, "AAPL")["quarantined"]
    with pytest.raises(NoValidDataError, match="missing required column"):
        clean_prices(batch({"AAPL": [fixed, broken]}), DataIngestionParams(), None)


def test_clean_prices_does_not_modify_its_inputs(snapshot):
    raw = raw_batch(("MSFT",))
    params = DataIngestionParams.parse({"validation": {"min_rows": 10}})
    before = (dict(raw.payloads), params.model_dump())

    clean_prices(raw, params, None)

    assert (dict(raw.payloads), params.model_dump()) == before
    assert raw.payloads["MSFT"][0].content == snapshot["MSFT"]


def test_identical_duplicate_rows_are_merged_and_noted(snapshot):
    header, *rows = snapshot["AAPL"].decode().splitlines()
    doubled = "\n".join([header, *rows[:100], rows[99], *rows[100:]]).encode()

    prices, report = clean_prices(
        batch({"AAPL": [payload("AAPL", doubled)]}), DataIngestionParams(), None
    )

    assert len(prices) == len(rows)
    assert report_row(report, "AAPL")["notes"] == "1 identical duplicate row(s) merged"
    assert np.isfinite(prices[C.CLOSE]).all()


# ------------------------------------------------------------------------------ run_date
def test_a_run_date_rebuilds_prices_as_known_at_its_close():
    prices, report = clean_prices(raw_batch(), DataIngestionParams(), "2023-07-03")
    assert prices["date"].max() == pd.Timestamp("2023-07-03")
    full, _ = clean_prices(raw_batch(), DataIngestionParams(), None)
    pd.testing.assert_frame_equal(
        prices.reset_index(drop=True),
        full[full["date"] <= "2023-07-03"].reset_index(drop=True),
    )
    assert not report["quarantined"].any()


def test_a_run_date_after_the_newest_bar_names_the_nearest_sessions():
    with pytest.raises(
        RunDateError,
        match=r"2024-01-05 is after the newest bar.*2023-12-28 and "
        r"2023-12-29",
    ):
        clean_prices(raw_batch(), DataIngestionParams(), "2024-01-05")


def test_a_symbol_without_a_bar_on_the_run_date_is_named_and_skipped(snapshot):
    day = "2023-07-03"
    lines = snapshot["MSFT"].decode().splitlines()
    without_day = "\n".join(line for line in lines if not line.startswith(day)) + "\n"
    raw = raw_batch(("AAPL",))
    raw.payloads["MSFT"] = [payload("MSFT", without_day.encode())]
    prices, report = clean_prices(raw, DataIngestionParams(), day)
    msft = report_row(report, "MSFT")
    assert not msft["quarantined"] and f"no bar on {day}: skipped that day" in msft["notes"]
    assert prices[prices["symbol"] == "MSFT"]["date"].max() < pd.Timestamp(day)
    assert prices[prices["symbol"] == "AAPL"]["date"].max() == pd.Timestamp(day)
