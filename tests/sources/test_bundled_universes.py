"""The second bundled universe: ten large US stocks 1999-2021 with splits and dividends."""

from __future__ import annotations

import csv
import datetime as dt
from importlib import resources

import pytest
from helpers import FIXTURES

from stock_mlops.core.params import DataIngestionParams, ParameterError
from stock_mlops.core.universes import UNIVERSES, universe_of
from stock_mlops.pipelines.data_ingestion.nodes import build_price_request
from stock_mlops.sources.base import PriceRequest, SourceError, make_source
from stock_mlops.sources.files import BundledSource

SNAPSHOT = resources.files("stock_mlops") / "snapshot"
AV10 = ["AAPL", "AMZN", "GOOGL", "IBM", "JPM", "KO", "MSFT", "NVDA", "TSLA", "XOM"]


def test_av10_is_the_ten_shared_files_byte_for_byte():
    source = BundledSource("av10")
    assert source.list_symbols() == AV10 == sorted(UNIVERSES["av10"].symbols)
    for symbol in AV10:
        payload = source.fetch(symbol)
        shared = FIXTURES / "prices/alphavantage_daily_adjusted" / f"DA-{symbol}-T-2021-04-21.csv"
        assert payload.content == shared.read_bytes()
        assert payload.origin == f"snapshot/av10/{symbol}.csv"


def test_every_bundled_universe_has_a_provenance_row():
    rows = list(csv.DictReader((SNAPSHOT / "SOURCES.csv").open()))
    assert {"mag7_splitadj", "av10"} <= {r["dir"] for r in rows}
    av10 = next(r for r in rows if r["dir"] == "av10")
    assert av10["source"] == "github:Pooksoft/PooksoftSP500EquityPriceDataSet"
    assert len(av10["commit"]) == 40 and "renamed" in av10["notes"]
    for name in UNIVERSES:
        assert (SNAPSHOT / name).is_dir()
        assert UNIVERSES[name].selection_bias


def test_the_universe_parameter_reaches_the_source():
    request = build_price_request(DataIngestionParams(universe="av10"), None)
    assert request.universe == "av10"
    assert PriceRequest.from_dict(request.to_dict()) == request
    assert make_source(request).list_symbols() == AV10
    # The default stays the seven mega caps, and old manifests (no universe) still read.
    assert make_source(PriceRequest(source="bundled", symbols=())).list_symbols()[0] == "AAPL"
    assert "META" in make_source(PriceRequest(source="bundled", symbols=())).list_symbols()


def test_a_universe_needs_the_bundled_source_and_a_known_name():
    with pytest.raises(ParameterError, match="universe 'av10' is a bundled snapshot"):
        DataIngestionParams.parse({"source": "csv", "csv_dir": "x", "universe": "av10"})
    with pytest.raises(ParameterError, match="data_ingestion.universe"):
        DataIngestionParams.parse({"universe": "sp500"}, "data_ingestion")
    with pytest.raises(SourceError, match="unknown bundled universe 'sp500'"):
        BundledSource("sp500")


def test_prices_tell_their_universe():
    assert universe_of({"AAPL", "KO"}, dt.date(1999, 11, 1), dt.date(2021, 4, 21)).name == "av10"
    assert universe_of({"AAPL"}, dt.date(2013, 1, 2), dt.date(2023, 12, 29)).name == "mag7"
    assert universe_of({"AAPL", "ZZZ"}, dt.date(2013, 1, 2), dt.date(2023, 12, 29)) is None
