"""The Alpaca price source: alpaca-py's real data client against the loopback fake Alpaca."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from fakes.alpaca_server import API_KEY, NEW_YORK, SECRET_KEY, FakeAlpacaServer

from stock_mlops.core.params import AlpacaDataParams, DataIngestionParams, ParameterError
from stock_mlops.datasets import RawPriceArchiveDataset
from stock_mlops.pipelines.data_ingestion.nodes import build_price_request, clean_prices
from stock_mlops.pipelines.data_ingestion.parsers import parse_payload
from stock_mlops.sources.alpaca import AlpacaSource
from stock_mlops.sources.base import SourceError, make_source

BARS = "/v2/stocks/bars"
# Saturday noon in New York: every bar up to Friday's is final.
WEEKEND = dt.datetime(2023, 12, 30, 12, 0, tzinfo=NEW_YORK)


@pytest.fixture
def fake(alpaca_keys):
    with FakeAlpacaServer(bar_page_size=100) as server:
        yield server


@pytest.fixture
def aapl_2023(small_prices: pd.DataFrame) -> pd.DataFrame:
    bars = small_prices[(small_prices["symbol"] == "AAPL") & (small_prices["date"] >= "2023-01-01")]
    return bars.reset_index(drop=True)


def _source(fake: FakeAlpacaServer, now: dt.datetime = WEEKEND, **settings) -> AlpacaSource:
    params = AlpacaDataParams(url_override=fake.url, **settings)
    return AlpacaSource.from_settings(params, now=lambda: now)


def test_full_fetch_merges_pages_and_parses_with_the_project_parser(fake, aapl_2023):
    fake.set_bars("AAPL", aapl_2023)

    payload = _source(fake, feed="sip").fetch("AAPL", full=True)

    assert (payload.format, payload.kind, payload.source) == ("alpaca-json", "full", "alpaca")
    bars = parse_payload(payload)
    assert len(bars) == len(aapl_2023) == 250
    # Daily bars are stamped at New York midnight in UTC (04:00Z or 05:00Z): dates survive.
    assert bars["date"].tolist() == aapl_2023["date"].tolist()
    assert bars["close"].to_numpy() == pytest.approx(aapl_2023["close"].to_numpy(), abs=1e-4)
    assert bars["volume"].tolist() == aapl_2023["volume"].astype(int).tolist()

    calls = fake.requests_to("GET", BARS)
    assert len(calls) == 3, "250 bars in pages of 100"
    assert [c.query.get("page_token") is None for c in calls] == [True, False, False]
    for call in calls:
        assert call.authorized
        assert call.query["symbols"] == "AAPL"
        assert call.query["timeframe"] == "1Day"
        assert call.query["adjustment"] == "all"
        assert call.query["feed"] == "sip"
        assert call.query["start"].startswith("2016-01-01T05:00:00")


def test_compact_fetch_asks_for_the_last_100_days_on_the_configured_feed(fake, aapl_2023):
    fake.set_bars("AAPL", aapl_2023)

    payload = _source(fake, feed="iex").fetch("AAPL", full=False)

    assert payload.kind == "compact"
    (call,) = fake.requests_to("GET", BARS)
    assert call.query["feed"] == "iex"
    assert call.query["start"].startswith("2023-09-21T04:00:00")  # 100 days before Dec 30
    bars = parse_payload(payload)
    assert bars["date"].min() == pd.Timestamp("2023-09-21")
    assert bars["date"].max() == pd.Timestamp("2023-12-29")


def test_a_session_still_trading_is_not_fetched(fake, aapl_2023):
    fake.set_bars("AAPL", aapl_2023)
    during_session = dt.datetime(2023, 12, 29, 11, 0, tzinfo=NEW_YORK)

    bars = parse_payload(_source(fake, now=during_session).fetch("AAPL", full=False))

    assert bars["date"].max() == pd.Timestamp("2023-12-28")
    (call,) = fake.requests_to("GET", BARS)
    assert call.query["end"].startswith("2023-12-29T04:59:59")


def test_missing_keys_name_the_variable(fake, monkeypatch):
    monkeypatch.delenv("ALPACA_SECRET_KEY")

    with pytest.raises(SourceError, match="ALPACA_SECRET_KEY") as caught:
        AlpacaSource.from_settings(AlpacaDataParams(url_override=fake.url))

    assert "ALPACA_API_KEY" not in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert fake.requests == []


def test_an_invalid_setting_is_refused_before_any_source_is_built(fake):
    with pytest.raises(ParameterError, match="data_ingestion.alpaca.feed"):
        AlpacaDataParams.parse(
            {"url_override": fake.url, "feed": "nasdaq"}, "data_ingestion.alpaca"
        )


def test_api_refusal_names_symbol_and_alpaca_message_without_secrets(fake, aapl_2023):
    fake.set_bars("AAPL", aapl_2023)
    fake.sip_allowed = False

    with pytest.raises(SourceError) as caught:
        _source(fake, feed="sip").fetch("AAPL", full=True)

    message = str(caught.value)
    assert "AAPL" in message
    assert "HTTP 403" in message
    assert "subscription does not permit querying recent SIP data" in message
    assert SECRET_KEY not in message and API_KEY not in message


def test_no_bars_is_a_source_error(fake):
    with pytest.raises(SourceError, match="no bars"):
        _source(fake).fetch("NOPE", full=True)


def test_wrong_keys_are_refused(fake, monkeypatch):
    monkeypatch.setenv("ALPACA_SECRET_KEY", "wrong-secret")

    with pytest.raises(SourceError, match="HTTP 401"):
        _source(fake).fetch("AAPL", full=True)


def test_unreachable_service_is_a_source_error(monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", API_KEY)
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET_KEY)
    with FakeAlpacaServer() as server:
        url = server.url  # a loopback port that is closed once the server stops

    with pytest.raises(SourceError, match="cannot connect"):
        AlpacaSource.from_settings(AlpacaDataParams(url_override=url)).fetch("AAPL", full=True)


def test_ingestion_archives_and_cleans_alpaca_bars(fake, small_prices, tmp_path):
    """make_source -> archive -> parse -> validate: the whole path a `source=alpaca` run takes."""
    for symbol in ("AAPL", "MSFT"):
        rows = small_prices[(small_prices["symbol"] == symbol) & (small_prices["date"] >= "2023")]
        fake.set_bars(symbol, rows)
    ingestion = DataIngestionParams.parse(
        {
            "source": "alpaca",
            "symbols": ["AAPL", "MSFT"],
            "alpaca": {"url_override": fake.url, "start_date": "2023-01-01"},
        }
    )
    request = build_price_request(ingestion, None)
    assert isinstance(make_source(request), AlpacaSource)
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))

    archive.save(request)
    prices, quality = clean_prices(archive.load(), ingestion, "2023-12-29")

    assert not quality["quarantined"].any(), quality["reason"].tolist()
    assert set(prices["symbol"]) == {"AAPL", "MSFT"}
    assert prices.groupby("symbol").size().to_dict() == {"AAPL": 250, "MSFT": 250}
    assert {c.query["start"][:10] for c in fake.requests_to("GET", BARS)} == {"2023-01-01"}
