"""AlphaVantageSource against a loopback server replaying real AlphaVantage responses.

Nothing here reaches the internet: the server listens on 127.0.0.1, clocks and sleeps are fakes
wherever the rate limit or the backoff would make a test wait.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pandas as pd
import pytest
from fakes.alphavantage_server import FakeAlphaVantage, Reply
from helpers import FIXTURES

from stock_mlops.core.params import AlphaVantageParams, DataIngestionParams, ParameterError
from stock_mlops.datasets.raw_prices import RawPriceArchiveDataset
from stock_mlops.pipelines.data_ingestion.nodes import (
    NoValidDataError,
    build_price_request,
    clean_prices,
)
from stock_mlops.pipelines.data_ingestion.parsers import parse_payload
from stock_mlops.sources.alphavantage import API_KEY_ENV, AlphaVantageSource, alphavantage_error
from stock_mlops.sources.base import PriceRequest, SourceError, make_source

# Distinctive, so that any leak is found by a plain substring search; `+` and `/` also make the
# URL-encoded form differ from the raw one.
FAKE_KEY = "FAKEKEY+ZQ7/XJ42-do-not-leak"
LEAKS = (FAKE_KEY, quote_plus(FAKE_KEY), "do-not-leak")
AV = FIXTURES / "alphavantage"
FIXTURE = {
    "AAPL": AV / "AAPL_TIME_SERIES_DAILY_ADJUSTED_compact_2023-03-24.json",
    "IBM": AV / "IBM_TIME_SERIES_DAILY_ADJUSTED_compact_2023-03-24.json",
}
ADJUSTED = "TIME_SERIES_DAILY_ADJUSTED"
DAILY = "TIME_SERIES_DAILY"


class FakeClock:
    """Monotonic seconds that advance only when slept on (or moved by the test)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[FakeAlphaVantage]:
    with FakeAlphaVantage(api_key=FAKE_KEY, clock=clock) as fake:
        for symbol, path in FIXTURE.items():
            fake.add_fixture(symbol, path)
        yield fake


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must never see (or forward) the loopback requests.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv(API_KEY_ENV, FAKE_KEY)


def make(
    server: FakeAlphaVantage, clock: FakeClock, calls_used_today: int = 0, **settings: Any
) -> AlphaVantageSource:
    """A source pointed at the fake server; no rate-limit spacing unless a test asks for it."""
    settings = {"base_url": server.base_url, "calls_per_minute": 1e6, **settings}
    return AlphaVantageSource.from_settings(
        AlphaVantageParams(**settings),
        calls_used_today=calls_used_today,
        clock=clock,
        sleep=clock.sleep,
    )


def fixture_bars(symbol: str) -> dict[str, dict[str, str]]:
    return json.loads(FIXTURE[symbol].read_bytes())["Time Series (Daily)"]


def assert_no_leak(text: str) -> None:
    for form in LEAKS:
        assert form not in text


# ------------------------------------------------------------------------- payload and parsing
def test_payload_is_the_body_as_received_and_describes_the_request(server, clock):
    source = make(server, clock)

    payload = source.fetch("IBM", full=False)

    # The server replays the saved response byte for byte for this exact request.
    assert payload.content == FIXTURE["IBM"].read_bytes()
    assert (payload.symbol, payload.source, payload.kind) == ("IBM", "alphavantage", "compact")
    assert payload.format == "alphavantage-json"
    assert payload.fetched_at.tzinfo == dt.UTC
    assert abs(dt.datetime.now(dt.UTC) - payload.fetched_at) < dt.timedelta(minutes=1)
    assert payload.origin == (
        f"{server.base_url}?function={ADJUSTED}&symbol=IBM&outputsize=compact&datatype=json"
    )
    assert_no_leak(payload.origin)
    sent = server.params_of("IBM")
    assert sent == [
        {
            "function": ADJUSTED,
            "symbol": "IBM",
            "outputsize": "compact",
            "datatype": "json",
            "apikey": FAKE_KEY,
        }
    ]
    assert source.calls_made == 1
    assert source.name == "alphavantage"
    assert source.list_symbols() is None
    assert_no_leak(repr(source))
    source.close()


@pytest.mark.parametrize("datatype", ["json", "csv"])
@pytest.mark.parametrize("function", [ADJUSTED, DAILY])
def test_every_layout_parses_to_the_fixture_values(server, clock, function, datatype):
    source = make(server, clock, function=function, datatype=datatype)

    payload = source.fetch("IBM", full=True)
    bars = parse_payload(payload).set_index("date")

    assert payload.format == f"alphavantage-{datatype}"
    assert payload.kind == "full"
    assert server.params_of("IBM")[0]["outputsize"] == "full"
    assert len(bars) == 100
    assert bars.index.is_monotonic_increasing
    assert (bars.index[0], bars.index[-1]) == (
        pd.Timestamp("2022-10-31"),
        pd.Timestamp("2023-03-24"),
    )
    newest = bars.loc["2023-03-24"]
    assert (newest["open"], newest["high"], newest["low"], newest["close"]) == (
        123.36,
        125.4,
        122.88,
        125.29,
    )
    # `6. volume` in the adjusted layout, `5. volume` in the plain one: both are the volume.
    assert newest["volume"] == 3812644
    assert bars.loc["2022-10-31", "volume"] == 4915270
    assert bars.loc["2022-10-31", "close"] == 138.29
    if function == ADJUSTED:
        # `5. adjusted close` is not the volume, and differs from the raw close before dividends.
        assert bars.loc["2022-10-31", "adjusted_close"] == pytest.approx(134.983681073308)
        assert bars.loc["2023-02-09", "dividend_amount"] == 1.65
        assert bars["split_coefficient"].eq(1.0).all()
    else:
        assert "adjusted_close" not in bars.columns
        assert "dividend_amount" not in bars.columns
    # Every bar, not just the samples: the values equal the saved response's.
    expected = fixture_bars("IBM")
    for day, values in expected.items():
        assert bars.loc[day, "close"] == float(values["4. close"])
        assert bars.loc[day, "volume"] == float(values["6. volume"])
    source.close()


# --------------------------------------------------------------------------------- error bodies
INFORMATION_PREMIUM = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
    "endpoints"
)
NOTE_RATE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day."
)
ERROR_BODIES = {
    "error-message": ({"Error Message": "Invalid API call. Please retry."}, "Invalid API call"),
    "information": ({"Information": INFORMATION_PREMIUM}, "This is a premium endpoint"),
    "note": ({"Note": NOTE_RATE}, "5 calls per minute"),
    "no-time-series": (
        {"Meta Data": {"2. Symbol": "IBM"}},
        "no 'Time Series' key in the response (keys: ['Meta Data'])",
    ),
    "empty-object": ({}, "no 'Time Series' key"),
}


@pytest.mark.parametrize("datatype", ["json", "csv"])
@pytest.mark.parametrize("case", sorted(ERROR_BODIES))
def test_error_bodies_raise_quoting_the_service_and_are_not_retried(server, clock, case, datatype):
    body, quoted = ERROR_BODIES[case]
    server.script("IBM", Reply(status=200, body=body))
    source = make(server, clock, datatype=datatype, max_retries=3)

    with pytest.raises(SourceError) as caught:
        source.fetch("IBM", full=True)

    message = str(caught.value)
    assert quoted in message
    assert "IBM" in message
    assert len(server.params_of("IBM")) == 1
    assert source.calls_made == 1
    assert clock.sleeps == []


def test_alphavantage_error_classifies_bodies():
    assert alphavantage_error({"Error Message": "bad symbol"}) == "Error Message: bad symbol"
    assert alphavantage_error({"Information": "premium"}) == "Information: premium"
    assert alphavantage_error({"Note": "slow down"}) == "Note: slow down"
    assert "no 'Time Series' key" in alphavantage_error({"Meta Data": {}})
    assert "not a JSON object" in alphavantage_error(["a", "list"])
    assert alphavantage_error(json.loads(FIXTURE["AAPL"].read_bytes())) is None
    assert alphavantage_error({"Time Series (Daily)": {}}) is None


@pytest.mark.parametrize(
    ("datatype", "body", "expected"),
    [
        ("json", "<html>502 Bad Gateway</html>", "not JSON"),
        ("csv", "<html>502 Bad Gateway</html>", "not a price CSV"),
        ("csv", "timestamp,open,high,low,close,volume\r\n", "no bars"),
        ("json", "", "empty body"),
    ],
)
def test_bodies_that_are_not_prices_are_rejected(server, clock, datatype, body, expected):
    server.script("AAPL", Reply(status=200, body=body, content_type="text/html"))
    source = make(server, clock, datatype=datatype)

    with pytest.raises(SourceError, match=expected) as caught:
        source.fetch("AAPL", full=False)

    assert "AAPL" in str(caught.value)


def test_csv_request_answered_with_a_json_series_is_rejected(server, clock):
    server.script("AAPL", Reply(body=FIXTURE["AAPL"].read_bytes()))
    source = make(server, clock, datatype="csv")

    with pytest.raises(SourceError, match="a JSON body instead of CSV"):
        source.fetch("AAPL", full=False)


def test_service_message_echoing_the_key_is_scrubbed(server, clock):
    echoed = f"We have detected your API key as {FAKE_KEY} and our rate limit is 25 per day."
    server.script("IBM", Reply(body={"Information": echoed}))
    source = make(server, clock)

    with pytest.raises(SourceError) as caught:
        source.fetch("IBM", full=True)

    assert "We have detected your API key as *** and our rate limit" in str(caught.value)
    assert_no_leak(str(caught.value))


def test_a_successful_answer_that_echoes_the_key_is_returned_scrubbed(server, clock):
    body = json.loads(FIXTURE["IBM"].read_bytes())
    body["Meta Data"]["1. Information"] = f"Daily Prices for apikey {FAKE_KEY}"
    server.script("IBM", Reply(body=body))

    payload = make(server, clock).fetch("IBM", full=True)

    assert_no_leak(payload.content.decode())
    assert "Daily Prices for apikey ***" in payload.content.decode()


def test_an_answer_for_another_symbol_is_refused(server, clock):
    server.script("AAPL", Reply(body=FIXTURE["IBM"].read_bytes()))

    with pytest.raises(SourceError, match="the response is for symbol 'IBM', not 'AAPL'"):
        make(server, clock).fetch("AAPL", full=True)


def test_a_symbol_that_is_not_a_name_is_never_requested(server, clock):
    with pytest.raises(SourceError, match="is not a valid symbol"):
        make(server, clock).fetch("../IBM", full=True)
    assert server.received == []


# ---------------------------------------------------------------------------- retries and HTTP
def test_5xx_is_retried_with_exponential_backoff_then_succeeds(server, clock):
    server.script("IBM", Reply(status=503, body="busy"), Reply(status=502, body="bad gateway"))
    source = make(server, clock, max_retries=3, backoff_seconds=1.5)

    payload = source.fetch("IBM", full=False)

    assert payload.content == FIXTURE["IBM"].read_bytes()
    assert len(server.params_of("IBM")) == 3
    assert clock.sleeps == [1.5, 3.0]
    assert source.calls_made == 3


def test_persistent_5xx_fails_after_max_retries(server, clock):
    server.script("IBM", *[Reply(status=503, body="busy")] * 5)
    source = make(server, clock, max_retries=2, backoff_seconds=1)

    with pytest.raises(SourceError) as caught:
        source.fetch("IBM", full=True)

    message = str(caught.value)
    assert "IBM" in message
    assert "failed after 3 attempt(s)" in message
    assert "HTTP 503" in message
    assert len(server.params_of("IBM")) == 3
    assert clock.sleeps == [1.0, 2.0]
    assert_no_leak(message)


def test_persistent_timeout_fails_after_max_retries(server, clock):
    # The server answers after 0.3 s; the client waits 0.05 s per attempt.
    server.script("IBM", *[Reply(delay=0.3, body={})] * 3)
    source = make(server, clock, max_retries=1, backoff_seconds=0.5, timeout_seconds=0.05)

    with pytest.raises(SourceError) as caught:
        source.fetch("IBM", full=True)

    message = str(caught.value)
    assert "failed after 2 attempt(s)" in message
    assert "timeout" in message
    assert len(server.params_of("IBM")) == 2
    assert clock.sleeps == [0.5]
    assert_no_leak(message)


@pytest.mark.parametrize("status", [400, 403, 404, 429])
def test_4xx_is_not_retried(server, clock, status):
    server.script("AAPL", Reply(status=status, body="no"), Reply(status=200))
    source = make(server, clock, max_retries=3)

    with pytest.raises(SourceError, match=f"HTTP {status}") as caught:
        source.fetch("AAPL", full=True)

    assert "not retried" in str(caught.value)
    assert len(server.params_of("AAPL")) == 1
    assert clock.sleeps == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_errors_are_retried_and_reported_without_the_key(clock, caplog):
    caplog.set_level(logging.DEBUG)
    settings = {
        "base_url": f"http://127.0.0.1:{_closed_port()}/query",
        "max_retries": 2,
        "backoff_seconds": 0.25,
        "calls_per_minute": 1e6,
    }
    source = AlphaVantageSource.from_settings(
        AlphaVantageParams(**settings), clock=clock, sleep=clock.sleep
    )

    with pytest.raises(SourceError) as caught:
        source.fetch("MSFT", full=True)

    error = caught.value
    assert "connection failed" in str(error)
    assert "failed after 3 attempt(s)" in str(error)
    assert "apikey=***" in str(error)  # requests quotes the URL: it is kept, masked
    assert clock.sleeps == [0.25, 0.5]
    assert source.calls_made == 3
    # Nothing chained either: a printed traceback shows no requests exception with the URL.
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_no_leak("".join(traceback.format_exception(error)))
    assert_no_leak(caplog.text)


def test_the_key_never_reaches_a_log_record(server, clock, caplog):
    caplog.set_level(logging.DEBUG)
    server.script("IBM", Reply(status=500, body="oops"))
    source = make(server, clock, max_retries=1, backoff_seconds=0)

    source.fetch("IBM", full=False)
    source.fetch("AAPL", full=True)

    # urllib3 logs each request line, URL and query included, at DEBUG: it is there, masked.
    request_lines = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert any("apikey=***" in r.getMessage() for r in request_lines)
    assert_no_leak(caplog.text)
    for record in caplog.records:
        assert_no_leak(record.getMessage())
        assert_no_leak(repr(record.args))


# ---------------------------------------------------------------------- rate limit and budget
def test_calls_are_spaced_by_the_rate_limit(server, clock):
    source = make(server, clock, calls_per_minute=5)

    for symbol in ("AAPL", "IBM", "AAPL"):
        source.fetch(symbol, full=False)
    clock.now += 30  # the run does other work: no wait needed after that
    source.fetch("IBM", full=False)

    times = [r.at for r in server.received]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [12.0, 12.0, 30.0]
    assert clock.sleeps == [12.0, 12.0]


def test_retries_respect_the_rate_limit_too(server, clock):
    server.script("IBM", Reply(status=503))
    source = make(server, clock, calls_per_minute=5, backoff_seconds=1)

    source.fetch("IBM", full=False)

    times = [r.at for r in server.received]
    assert times[1] - times[0] == 12.0
    assert clock.sleeps == [1.0, 11.0]


def test_daily_budget_stops_before_the_request(server, clock):
    source = make(server, clock, calls_used_today=1, daily_budget=3)

    source.fetch("AAPL", full=False)
    source.fetch("IBM", full=False)
    with pytest.raises(SourceError, match="daily budget used up before fetching AAPL") as caught:
        source.fetch("AAPL", full=False)

    assert "3 of 3 calls" in str(caught.value)
    assert len(server.received) == 2
    assert source.calls_made == 2
    assert source.calls_remaining == 0


def test_spent_budget_makes_no_request_at_all(server, clock):
    source = make(server, clock, calls_used_today=25)

    with pytest.raises(SourceError, match="daily budget"):
        source.fetch("IBM", full=True)

    assert server.received == []
    assert source.calls_made == 0


def test_retries_stop_at_the_budget(server, clock):
    server.script("IBM", *[Reply(status=503)] * 5)
    source = make(server, clock, daily_budget=2, max_retries=5, backoff_seconds=0)

    with pytest.raises(SourceError) as caught:
        source.fetch("IBM", full=True)

    assert "daily budget used up" in str(caught.value)
    assert "last attempt: HTTP 503" in str(caught.value)
    assert len(server.received) == 2


# ------------------------------------------------------------------------------ construction
def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV)
    request = PriceRequest("alphavantage", ("IBM",), alphavantage=AlphaVantageParams())

    with pytest.raises(SourceError, match=API_KEY_ENV):
        make_source(request)
    with pytest.raises(SourceError, match=API_KEY_ENV):
        AlphaVantageSource.from_settings(AlphaVantageParams(), environ={API_KEY_ENV: "  "})
    with pytest.raises(SourceError, match=API_KEY_ENV):
        AlphaVantageSource("", AlphaVantageParams())


def test_invalid_settings_are_refused_before_any_source_is_built():
    with pytest.raises(ParameterError, match="data_ingestion.alphavantage.apikey"):
        AlphaVantageParams.parse({"apikey": FAKE_KEY}, "data_ingestion.alphavantage")
    with pytest.raises(ParameterError, match="data_ingestion.alphavantage.datatype"):
        AlphaVantageParams.parse({"datatype": "xml"}, "data_ingestion.alphavantage")


def test_make_source_builds_it_from_the_request():
    request = PriceRequest(
        "alphavantage", ("IBM",), alphavantage=AlphaVantageParams(datatype="csv")
    )

    source = make_source(request, calls_used_today=24)

    assert isinstance(source, AlphaVantageSource)
    assert source.calls_remaining == 1


# ------------------------------------------------------------- through the raw-price archive
def ingestion(server: FakeAlphaVantage, symbols: list[str], **settings: Any) -> DataIngestionParams:
    return DataIngestionParams.parse(
        {
            "source": "alphavantage",
            "symbols": symbols,
            "alphavantage": {
                "base_url": server.base_url,
                "calls_per_minute": 60000,  # 1 ms spacing: the real clock is used here
                "backoff_seconds": 0,
                "max_retries": 1,
                "timeout_seconds": 5,
                **settings,
            },
        }
    )


def archived_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class TwoRuns:
    """Two daily ingestion runs of AAPL and IBM through the archive: the first "on 2023-03-21"
    (full history up to that day), the second three sessions later (a compact window of the
    newest 10 bars)."""

    def __init__(self, server: FakeAlphaVantage, root: Path) -> None:
        self.server = server
        self.params = ingestion(server, ["AAPL", "IBM"])
        self.archive = RawPriceArchiveDataset(filepath=str(root))
        server.compact_size = 10

    def run(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.archive.save(build_price_request(self.params, None))
        return clean_prices(self.archive.load(), self.params, None)

    def first(self) -> pd.DataFrame:
        self.server.until.update(AAPL="2023-03-21", IBM="2023-03-21")
        prices, _ = self.run()
        self.server.until.clear()
        return prices


@pytest.fixture
def two_runs(server, tmp_path) -> TwoRuns:
    return TwoRuns(server, tmp_path / "raw")


def test_incremental_fetches_merge_full_history_and_compact_window(server, tmp_path, two_runs):
    first = two_runs.first()
    prices, quality = two_runs.run()

    for symbol in ("AAPL", "IBM"):
        assert [p["outputsize"] for p in server.params_of(symbol)] == ["full", "compact"]
        dates = set(prices.loc[prices["symbol"] == symbol, "date"].dt.strftime("%Y-%m-%d"))
        # 97 bars from the full fetch plus 3 from the compact one: the union, 100 dates.
        assert dates == set(fixture_bars(symbol))
        assert first.loc[first["symbol"] == symbol, "date"].max() == pd.Timestamp("2023-03-21")
    newest = prices[(prices["symbol"] == "AAPL") & (prices["date"] == "2023-03-24")]
    assert newest[["close", "volume"]].to_numpy().tolist() == [[160.25, 59256343]]
    assert not quality["quarantined"].any()
    kinds = sorted(
        p.name.split("_")[1] for p in (tmp_path / "raw" / "alphavantage").rglob("*.json")
    )
    assert kinds == ["compact.json", "compact.json", "full.json", "full.json"]


def test_failed_refresh_keeps_the_archived_history_and_reports_it(server, two_runs):
    before = two_runs.first()
    server.script("IBM", Reply(body={"Information": INFORMATION_PREMIUM}))
    prices, quality = two_runs.run()

    ibm_before = before[before["symbol"] == "IBM"].reset_index(drop=True)
    ibm_after = prices[prices["symbol"] == "IBM"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ibm_after, ibm_before)
    assert prices.loc[prices["symbol"] == "AAPL", "date"].max() == pd.Timestamp("2023-03-24")
    fetch_rows = quality[(quality["symbol"] == "IBM") & (quality["stage"] == "fetch")]
    assert len(fetch_rows) == 1
    # Reported, but IBM is not quarantined: its archived history still passes validation.
    assert "This is a premium endpoint" in fetch_rows["notes"].iloc[0]
    assert not quality.loc[quality["symbol"] == "IBM", "quarantined"].any()
    assert not quality.loc[quality["symbol"] == "AAPL", "quarantined"].any()


def test_every_symbol_failing_is_recorded_and_stops_the_ingestion_naming_each(server, tmp_path):
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    server.script("AAPL", Reply(body={"Note": NOTE_RATE}))
    server.script("IBM", *[Reply(status=503)] * 2)
    params = ingestion(server, ["AAPL", "IBM"])

    archive.save(build_price_request(params, None))  # recorded: the ingestion node decides
    with pytest.raises(NoValidDataError) as caught:
        clean_prices(archive.load(), params, None)

    message = str(caught.value)
    assert "AAPL" in message and "5 calls per minute" in message
    assert "IBM" in message and "HTTP 503" in message
    report = caught.value.report
    assert set(report["symbol"]) == {"AAPL", "IBM"} and report["quarantined"].all()


def test_daily_budget_counts_earlier_runs_of_the_day(server, tmp_path):
    params = ingestion(server, ["AAPL", "IBM"], daily_budget=2)
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    archive.save(build_price_request(params, None))

    archive.save(build_price_request(params, None))

    assert len(server.received) == 2, "the second fetch of the day sent nothing"
    loaded = archive.load()
    assert {f.symbol for f in loaded.failures} == {"AAPL", "IBM"}
    assert all("daily budget used up" in f.reason for f in loaded.failures)
    # The archive of the first fetch still serves: the symbols are noted, not quarantined.
    prices, report = clean_prices(loaded, params, None)
    assert set(prices["symbol"]) == {"AAPL", "IBM"}
    fetch_rows = report[report["stage"] == "fetch"]
    assert fetch_rows["notes"].str.contains("daily budget used up").all()


@pytest.mark.parametrize("datatype", ["json", "csv"])
def test_the_key_is_in_no_archived_file(server, tmp_path, caplog, datatype):
    caplog.set_level(logging.DEBUG)
    echoed = f"We have detected your API key as {FAKE_KEY}; 25 requests per day."
    server.script("MSFT", Reply(body={"Information": echoed}))
    params = ingestion(server, ["AAPL", "IBM", "MSFT"], datatype=datatype)
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))

    archive.save(build_price_request(params, None))
    loaded = archive.load()

    files = archived_bytes(tmp_path / "raw")
    assert any(name.endswith(f".{datatype}") for name in files)
    assert any("_manifests" in name for name in files)
    for content in files.values():
        for form in LEAKS:
            assert form.encode() not in content
    assert "detected your API key as ***" in loaded.failures[0].reason
    assert sorted(loaded.payloads) == ["AAPL", "IBM"]
    assert_no_leak(caplog.text)
