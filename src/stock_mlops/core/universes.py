"""The bundled universes (``data_ingestion.universe``) and how each one was picked.

A universe chosen after the fact is a statement about the past: buying and holding names known
to have done well is not a strategy anyone could have followed. Each universe says how it was
chosen so that every page showing an absolute return can say what that return is conditional on.
The price files live in ``snapshot/<name>/`` with their provenance in ``snapshot/SOURCES.csv``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Universe:
    """One bundled snapshot."""

    name: str
    symbols: tuple[str, ...]
    first_date: dt.date
    last_date: dt.date
    adjustment: str
    selection_bias: str


UNIVERSES = {
    "mag7": Universe(
        name="mag7",
        symbols=("AAPL", "AMZN", "GOOGL", "META", "MSFT", "NVDA", "TSLA"),
        first_date=dt.date(2013, 1, 2),
        last_date=dt.date(2023, 12, 29),
        adjustment="split-adjusted, not dividend-adjusted (Yahoo)",
        selection_bias=(
            "the 'Magnificent 7', named in 2023 for being that year's seven largest winners: "
            "picked with hindsight at the end of the period, so every absolute or buy-and-hold "
            "return on them is conditional on knowing which stocks won (survivorship and "
            "look-ahead selection); only comparisons between strategies on the same names mean "
            "something"
        ),
    ),
    "av10": Universe(
        name="av10",
        symbols=("AAPL", "AMZN", "GOOGL", "IBM", "JPM", "KO", "MSFT", "NVDA", "TSLA", "XOM"),
        first_date=dt.date(1999, 11, 1),
        last_date=dt.date(2021, 4, 21),
        adjustment="splits and dividends (AlphaVantage adjusted close)",
        selection_bias=(
            "ten large US companies that were all in the S&P 500 in 2021, when the dump was "
            "made: less hindsight-picked than mag7 (it holds laggards: IBM, KO, XOM, JPM) but "
            "still survivors, chosen at the end of the period, and six of the ten (AAPL, AMZN, "
            "GOOGL, MSFT, NVDA, TSLA) are the decade's biggest winners; buy-and-hold returns "
            "remain optimistic"
        ),
    ),
}
DEFAULT_UNIVERSE = "mag7"


def universe_of(symbols: set[str], first: dt.date, last: dt.date) -> Universe | None:
    """The bundled universe that ``prices`` with these symbols and dates came from, or None for
    data from elsewhere (some symbols belong to both universes; the dates tell them apart)."""
    for universe in UNIVERSES.values():
        if (
            symbols
            and set(symbols) <= set(universe.symbols)
            and universe.first_date <= first
            and last <= universe.last_date
        ):
            return universe
    return None
