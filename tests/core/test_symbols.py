"""Symbols are names, never paths; every numeric parameter is finite."""

from __future__ import annotations

import math

import pytest

from stock_mlops.core.params import ParameterError, ProjectParams, TradingParams
from stock_mlops.core.symbols import (
    SYMBOL_PATTERN,
    InvalidSymbolError,
    is_valid_symbol,
    validate_symbol,
    validate_symbols,
)


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BF-B", "A", "7203", "ABCDEFGHIJKLMNO"])
def test_real_symbols_are_accepted(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "../../../../../ESC",
        "..",
        ".",
        ".AAPL",
        "A/B",
        "A\\B",
        "aapl",
        "A B",
        "",
        "ABCDEFGHIJKLMNOP",
    ],
)
def test_paths_and_odd_names_are_refused_with_the_value_and_the_pattern(symbol):
    assert not is_valid_symbol(symbol)
    with pytest.raises(InvalidSymbolError) as caught:
        validate_symbol(symbol, "a test")
    assert repr(symbol) in str(caught.value) and "(from a test)" in str(caught.value)
    assert SYMBOL_PATTERN in str(caught.value)


def test_a_list_names_every_invalid_symbol():
    with pytest.raises(InvalidSymbolError, match=r"'\.\.', '\.'"):
        validate_symbols(["AAPL", "..", "."], "the folder")
    assert not is_valid_symbol(None) and not is_valid_symbol(3)


def test_the_symbols_parameter_refuses_a_path_traversal():
    with pytest.raises(ParameterError) as caught:
        ProjectParams.parse({"data_ingestion": {"symbols": "../../../../../ESC MSFT"}})
    message = str(caught.value)
    assert "parameter 'data_ingestion.symbols'" in message and "'../../../../../ESC'" in message
    # Lower case is still a symbol: it is upper-cased before the check.
    parsed = ProjectParams.parse({"data_ingestion": {"symbols": "aapl brk.b"}})
    assert parsed.data_ingestion.symbols == ["AAPL", "BRK.B"]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"local": {"initial_cash": math.inf}}, "trading.local.initial_cash"),
        ({"threshold": math.inf}, "trading.threshold"),
        ({"threshold": math.nan}, "trading.threshold"),
        ({"risk": {"max_price_deviation": "inf"}}, "trading.risk.max_price_deviation"),
        ({"local": {"slippage_bps": "-inf"}}, "trading.local.slippage_bps"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_key(raw, key):
    with pytest.raises(ParameterError) as caught:
        TradingParams.parse(raw, "trading")
    assert f"parameter '{key}'" in str(caught.value)
    assert "finite" in str(caught.value)


def test_every_numeric_parameter_of_the_tree_is_finite():
    with pytest.raises(ParameterError, match="data_ingestion.validation.spike_min_move.*finite"):
        ProjectParams.parse({"data_ingestion": {"validation": {"spike_min_move": math.inf}}})
    with pytest.raises(ParameterError, match="storage.lock.wait_seconds.*finite"):
        ProjectParams.parse({"storage": {"lock": {"wait_seconds": math.inf}}})
