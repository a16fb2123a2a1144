"""Parsers: every supported layout from real files, and every way a payload can be unusable."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from helpers import FIXTURES, make_payload

from stock_mlops.pipelines.data_ingestion.parsers import (
    OPTIONAL,
    REQUIRED,
    ParseError,
    alphavantage_error,
    parse_payload,
)
from stock_mlops.sources.base import RawPayload
from stock_mlops.sources.files import BundledSource

AV_CSV = FIXTURES / "prices" / "alphavantage_daily_adjusted" / "DA-AAPL-T-2021-04-21.csv"
AV_JSON = FIXTURES / "alphavantage" / "AAPL_TIME_SERIES_DAILY_ADJUSTED_compact_2023-03-24.json"


def payload(
    content: bytes, fmt: str = "csv", symbol: str = "AAPL", origin: str = "AAPL.csv"
) -> RawPayload:
    """A payload as a source would deliver it (AAPL unless told otherwise)."""
    return make_payload(symbol, content, fmt=fmt, origin=origin, source="test")


@pytest.fixture(scope="module")
def yahoo_bytes() -> bytes:
    """The bundled AAPL file: Yahoo layout ``Date,Open,High,Low,Close,Volume``."""
    return BundledSource().fetch("AAPL").content


def _lines(content: bytes) -> list[str]:
    """The text lines of a CSV payload, header first."""
    return content.decode().splitlines()


# ------------------------------------------------------------------------------ CSV layouts
def test_yahoo_layout_is_parsed_typed_and_sorted(yahoo_bytes):
    bars = parse_payload(payload(yahoo_bytes))

    assert list(bars.columns) == REQUIRED
    assert len(bars) == len(_lines(yahoo_bytes)) - 1
    assert bars["date"].is_monotonic_increasing
    assert bars["date"].iloc[0] == pd.Timestamp("2013-01-02")
    first = _lines(yahoo_bytes)[1].split(",")
    assert bars.loc[0, "open"] == float(first[1])
    assert bars.loc[0, "close"] == float(first[4])
    assert bars.loc[0, "volume"] == float(first[5])
    assert all(pd.api.types.is_numeric_dtype(bars[c]) for c in REQUIRED[1:])
    assert pd.api.types.is_datetime64_dtype(bars["date"])


def test_yahoo_adj_close_column_maps_to_adjusted_close(yahoo_bytes):
    lines = _lines(yahoo_bytes)[:30]
    header = "Date,Open,High,Low,Close,Adj Close,Volume"
    rows = []
    for line in lines[1:]:
        d, o, h, lo, c, v = line.split(",")
        rows.append(",".join([d, o, h, lo, c, str(float(c) * 0.97), v]))
    bars = parse_payload(payload("\n".join([header, *rows]).encode()))

    assert "adjusted_close" in bars.columns
    np.testing.assert_allclose(bars["adjusted_close"], bars["close"] * 0.97)


def test_alphavantage_csv_in_either_row_order_gives_the_same_bars():
    ascending = AV_CSV.read_bytes()
    header, *rows = _lines(ascending)
    newest_first = "\n".join([header, *reversed(rows)]).encode()

    a = parse_payload(payload(ascending, "alphavantage-csv"))
    b = parse_payload(payload(newest_first, "alphavantage-csv"))

    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == REQUIRED + OPTIONAL
    assert a["date"].is_monotonic_increasing
    split_day = a[a["date"] == "2014-06-09"].iloc[0]
    assert split_day["close"] == 93.7
    assert split_day["split_coefficient"] == pytest.approx(7.00000700001)


def test_plain_lower_case_ohlcv(yahoo_bytes):
    header, *rows = _lines(yahoo_bytes)
    plain = "\n".join([header.lower(), *rows[:50]]).encode()

    bars = parse_payload(payload(plain))

    expected = parse_payload(payload(yahoo_bytes)).iloc[:50]
    pd.testing.assert_frame_equal(bars, expected)


def test_unparseable_values_become_nan_for_validation(yahoo_bytes):
    header, *rows = _lines(yahoo_bytes)
    d, o, h, lo, _c, v = rows[3].split(",")
    rows[3] = ",".join([d, o, h, lo, "null", v])

    bars = parse_payload(payload("\n".join([header, *rows[:10]]).encode()))

    assert np.isnan(bars.loc[3, "close"])
    assert bars["close"].notna().sum() == 9


# ----------------------------------------------------------------------- AlphaVantage JSON
def test_every_number_equals_pythons_reading_of_its_text_on_both_reading_paths(yahoo_bytes):
    # Well-formed files take the fast reader; a text value sends the file to the lenient one.
    # Either way each number is the correctly rounded float of its text.
    header, *rows = _lines(yahoo_bytes)
    odd = rows.copy()
    d, o, h, lo, _c, v = odd[7].split(",")
    odd[7] = ",".join([d, o, h, lo, "n.a.", v])

    for content in (yahoo_bytes, "\n".join([header, *odd]).encode()):
        bars = parse_payload(payload(content))
        texts = [row.split(",") for row in _lines(content)[1:]]
        for column, name in ((1, "open"), (4, "close"), (5, "volume")):
            expected = [float(t[column]) if t[column] != "n.a." else np.nan for t in texts]
            np.testing.assert_array_equal(bars[name].to_numpy(), expected, err_msg=name)


def test_alphavantage_daily_adjusted_json_maps_keys_by_name():
    raw = json.loads(AV_JSON.read_text())
    series = raw["Time Series (Daily)"]

    bars = parse_payload(payload(AV_JSON.read_bytes(), "alphavantage-json", origin="AAPL.json"))

    assert len(bars) == len(series) == 100
    assert bars["date"].is_monotonic_increasing  # the vendor sends newest first
    last = bars.iloc[-1]
    assert last["date"] == pd.Timestamp("2023-03-24")
    assert last["close"] == 160.25
    # "5." is the adjusted close here and "6." the volume: by name, not by number.
    assert last["volume"] == 59256343
    dividend_day = bars[bars["date"] == "2022-12-23"].iloc[0]
    assert dividend_day["adjusted_close"] == pytest.approx(131.659472361809)
    assert dividend_day["dividend_amount"] == pytest.approx(0.1667)
    assert set(OPTIONAL) <= set(bars.columns)


def test_alphavantage_daily_json_where_five_is_volume():
    raw = json.loads(AV_JSON.read_text())
    # The TIME_SERIES_DAILY layout: the same bars, "5. volume" and no adjustment fields.
    daily = {
        "Meta Data": raw["Meta Data"],
        "Time Series (Daily)": {
            day: {
                "1. open": v["1. open"],
                "2. high": v["2. high"],
                "3. low": v["3. low"],
                "4. close": v["4. close"],
                "5. volume": v["6. volume"],
            }
            for day, v in raw["Time Series (Daily)"].items()
        },
    }
    bars = parse_payload(payload(json.dumps(daily).encode(), "alphavantage-json"))

    assert list(bars.columns) == REQUIRED
    assert bars.iloc[-1]["volume"] == 59256343


@pytest.mark.parametrize(
    ("body", "quoted"),
    [
        (
            {"Error Message": "Invalid API call. Please retry or visit the documentation."},
            "Invalid API call",
        ),
        (
            {"Information": "Thank you for using Alpha Vantage! Our standard API rate limit is "},
            "standard API rate limit",
        ),
        (
            {"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5"},
            "call frequency",
        ),
        ({"Meta Data": {"2. Symbol": "AAPL"}}, "no 'Time Series' key"),
    ],
)
def test_alphavantage_error_bodies_raise_quoting_the_service(body, quoted):
    with pytest.raises(ParseError, match=quoted) as info:
        parse_payload(payload(json.dumps(body).encode(), "alphavantage-json", origin="query"))
    assert "AAPL (query)" in str(info.value)
    assert alphavantage_error(body) is not None


def test_alphavantage_error_body_in_a_csv_response_is_an_error():
    body = json.dumps({"Error Message": "Invalid API call."}).encode()
    with pytest.raises(ParseError, match="Invalid API call"):
        parse_payload(payload(body, "alphavantage-csv"))


def test_alphavantage_error_is_none_for_a_real_series():
    assert alphavantage_error(json.loads(AV_JSON.read_text())) is None


def test_empty_time_series_is_an_error():
    body = json.dumps({"Meta Data": {}, "Time Series (Daily)": {}}).encode()
    with pytest.raises(ParseError, match="empty"):
        parse_payload(payload(body, "alphavantage-json"))


# ------------------------------------------------------------------------------ unusable files
def test_missing_column_names_object_and_column(yahoo_bytes):
    header, *rows = _lines(yahoo_bytes)
    without_volume = "\n".join(line.rsplit(",", 1)[0] for line in [header, *rows[:20]])

    with pytest.raises(ParseError, match="missing required column") as info:
        parse_payload(payload(without_volume.encode(), symbol="IBM", origin="IBM.csv"))
    assert "IBM (IBM.csv)" in str(info.value)
    assert "volume" in str(info.value)


def test_adjusted_close_without_raw_close_is_refused():
    content = b"date,open,high,low,adjusted_close,volume\n2020-01-02,1,2,0.5,1.5,100\n"
    with pytest.raises(ParseError, match="no raw 'close'"):
        parse_payload(payload(content))


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_empty_file_names_object(content):
    with pytest.raises(ParseError, match=r"MSFT \(MSFT.csv\): the file is empty"):
        parse_payload(payload(content, symbol="MSFT", origin="MSFT.csv"))


def test_binary_file_names_object(yahoo_bytes):
    with pytest.raises(ParseError, match=r"NVDA \(NVDA.csv\): not a text file"):
        parse_payload(payload(gzip.compress(yahoo_bytes), symbol="NVDA", origin="NVDA.csv"))


def test_non_utf8_text_names_object(yahoo_bytes):
    latin1 = yahoo_bytes[:500].decode().replace("Date", "Datum é").encode("latin-1")
    with pytest.raises(ParseError, match=r"AAPL \(AAPL.csv\): not a text file"):
        parse_payload(payload(latin1))


def test_invalid_json_names_object():
    with pytest.raises(ParseError, match=r"AAPL \(q\): not valid JSON"):
        parse_payload(payload(b'{"Time Series (Daily)": ', "alphavantage-json", origin="q"))


def test_unknown_format_is_refused(yahoo_bytes):
    with pytest.raises(ParseError, match="unknown payload format 'xlsx'"):
        parse_payload(payload(yahoo_bytes, "xlsx"))


@pytest.mark.parametrize(
    ("fixture", "series"),
    [
        ("MSFT_TIME_SERIES_MONTHLY_ADJUSTED_2025-05-30.json", "Monthly Adjusted Time Series"),
        ("MSFT_TIME_SERIES_INTRADAY_1min_compact_mock_2017-12-18.json", "Time Series (1min)"),
    ],
)
def test_non_daily_alphavantage_series_are_rejected_by_name(fixture, series):
    content = (FIXTURES / "alphavantage" / fixture).read_bytes()
    with pytest.raises(ParseError, match=r"is not a daily series") as error:
        parse_payload(payload(content, fmt="alphavantage-json", symbol="MSFT"))
    assert series in str(error.value)


def test_a_json_series_where_csv_was_expected_is_named():
    with pytest.raises(ParseError, match="JSON time series where a CSV file was expected"):
        parse_payload(payload(AV_JSON.read_bytes(), fmt="csv"))
