"""Symbols are names, never paths: one pattern checked wherever a symbol enters the project.

A symbol arrives from parameters (``data_ingestion.symbols``), from file names (a CSV folder),
from API responses (AlphaVantage's metadata, Alpaca's bars and positions) and from orders. Every
one of them passes :func:`validate_symbol` before it is used, and every dataset path built from a
symbol is built from a validated one, so ``../../ESC`` or ``..`` can never leave the storage root.

The pattern, ``^[A-Z0-9][A-Z0-9.\\-]{0,14}$``: upper-case letters and digits, then up to 14 more of
those or ``.`` and ``-`` (share classes such as ``BRK.B`` or ``BF-B``). No slash, no backslash, no
space, and never a leading dot, so neither ``.`` nor ``..`` is a symbol.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9.\-]{0,14}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


class InvalidSymbolError(ValueError):
    """A symbol that does not match :data:`SYMBOL_PATTERN`; the message names it and where."""


def is_valid_symbol(symbol: object) -> bool:
    """Whether ``symbol`` is a string matching :data:`SYMBOL_PATTERN` (no normalisation)."""
    return isinstance(symbol, str) and _SYMBOL.fullmatch(symbol) is not None


def validate_symbol(symbol: object, where: str = "") -> str:
    """Returns ``symbol`` unchanged when it is a valid symbol name.

    Args:
        symbol: The candidate (already upper-cased where the source allows lower case).
        where: Where it came from, for the message (``"data_ingestion.symbols"``, a file name).

    Returns:
        The symbol.

    Raises:
        InvalidSymbolError: Naming the value, where it came from and the pattern.
    """
    if is_valid_symbol(symbol):
        return symbol  # type: ignore[return-value]
    origin = f" (from {where})" if where else ""
    raise InvalidSymbolError(
        f"{symbol!r}{origin} is not a valid symbol: symbols are 1-15 characters of A-Z, 0-9, '.' "
        f"and '-', starting with a letter or digit (pattern {SYMBOL_PATTERN})"
    )


def validate_symbols(symbols: Iterable[object], where: str = "") -> list[str]:
    """Validates every symbol; the error lists all invalid ones at once.

    Args:
        symbols: The candidates.
        where: Where they came from, for the message.

    Returns:
        The symbols, in order.

    Raises:
        InvalidSymbolError: When any is invalid.
    """
    symbols = list(symbols)
    bad = [s for s in symbols if not is_valid_symbol(s)]
    if bad:
        origin = f" in {where}" if where else ""
        raise InvalidSymbolError(
            f"invalid symbol(s){origin}: {', '.join(repr(s) for s in bad)}; symbols are 1-15 "
            f"characters of A-Z, 0-9, '.' and '-', starting with a letter or digit "
            f"(pattern {SYMBOL_PATTERN})"
        )
    return symbols  # type: ignore[return-value]
