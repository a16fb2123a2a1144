"""File-based sources: the bundled snapshot shipped with the package, and a folder of CSV files."""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from pathlib import Path

import fsspec

from stock_mlops.core.symbols import InvalidSymbolError, is_valid_symbol, validate_symbol
from stock_mlops.core.universes import DEFAULT_UNIVERSE, UNIVERSES
from stock_mlops.sources.base import RawPayload, SourceError

BUNDLED_SNAPSHOT = DEFAULT_UNIVERSE


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BundledSource:
    """The real daily prices shipped inside the package (see ``snapshot/SOURCES.csv``), one
    folder per universe (``data_ingestion.universe``; see :mod:`stock_mlops.core.universes`)."""

    name = "bundled"

    def __init__(self, snapshot: str = BUNDLED_SNAPSHOT) -> None:
        if snapshot not in UNIVERSES:
            raise SourceError(
                f"unknown bundled universe '{snapshot}' (available: {', '.join(UNIVERSES)})"
            )
        self._snapshot = snapshot
        self._folder = resources.files("stock_mlops") / "snapshot" / snapshot

    def list_symbols(self) -> list[str]:
        return sorted(
            entry.name[: -len(".csv")]
            for entry in self._folder.iterdir()
            if entry.name.endswith(".csv") and is_valid_symbol(entry.name[: -len(".csv")])
        )

    def fetch(self, symbol: str, *, full: bool = True) -> RawPayload:
        try:
            validate_symbol(symbol, "data_ingestion.symbols")
        except InvalidSymbolError as exc:
            raise SourceError(str(exc)) from None
        entry = self._folder / f"{symbol}.csv"
        if not entry.is_file():
            raise SourceError(
                f"symbol '{symbol}' is not in the bundled snapshot '{self._snapshot}' "
                f"(available: {', '.join(self.list_symbols())})"
            )
        return RawPayload(
            symbol=symbol,
            source=self.name,
            format="csv",
            content=entry.read_bytes(),
            fetched_at=_now(),
            kind="file",
            origin=f"snapshot/{self._snapshot}/{symbol}.csv",
        )


class CsvFolderSource:
    """Every ``*.csv`` in a folder (local or any fsspec URL), one symbol per file.

    The symbol is the file's stem, or the ``symbol`` group of ``symbol_regex`` matched against
    the file name (e.g. ``DA-(?P<symbol>[A-Z.]+)-T-.*\\.csv`` for AlphaVantage dumps), upper-cased
    and checked against the symbol pattern (:mod:`stock_mlops.core.symbols`). Files that are not
    ``.csv``, or whose name gives no valid symbol (``..csv``, ``a b.csv``), are reported by
    :meth:`rejected_files`, never parsed.
    """

    name = "csv"

    def __init__(self, folder: str, symbol_regex: str | None = None) -> None:
        self._folder = str(folder).rstrip("/")
        self._fs, self._root = fsspec.core.url_to_fs(self._folder)
        if not self._fs.isdir(self._root):
            raise SourceError(f"CSV folder '{folder}' does not exist or is not a folder")
        self._pattern = re.compile(symbol_regex) if symbol_regex else None
        if self._pattern is not None and "symbol" not in self._pattern.groupindex:
            raise SourceError(f"csv_symbol_regex '{symbol_regex}' has no (?P<symbol>...) group")

    def _entries(self) -> list[str]:
        return sorted(
            path for path in self._fs.ls(self._root, detail=False) if self._fs.isfile(path)
        )

    def _symbol_of(self, filename: str) -> str | None:
        symbol, _ = self._classify(filename)
        return symbol

    def _classify(self, filename: str) -> tuple[str | None, str]:
        """The file's symbol, or None and why the file is not read."""
        if not filename.lower().endswith(".csv"):
            return None, "not a .csv file; ignored"
        if self._pattern is None:
            symbol = filename[: -len(".csv")].upper()
        else:
            match = self._pattern.fullmatch(filename)
            if not match:
                return None, "does not match csv_symbol_regex; ignored"
            symbol = match.group("symbol").upper()
        if not is_valid_symbol(symbol):
            try:
                validate_symbol(symbol, f"the file name {filename!r}")
            except InvalidSymbolError as exc:
                return None, f"{exc}; ignored"
        return symbol, ""

    def _files_by_symbol(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for path in self._entries():
            symbol = self._symbol_of(Path(path).name)
            if symbol is None:
                continue
            if symbol in found:
                raise SourceError(
                    f"two files in '{self._folder}' map to symbol '{symbol}': "
                    f"{Path(found[symbol]).name} and {Path(path).name}"
                )
            found[symbol] = path
        return found

    def list_symbols(self) -> list[str]:
        return sorted(self._files_by_symbol())

    def rejected_files(self) -> list[tuple[str, str]]:
        """Files in the folder that are not symbol CSV files, with why (reported, never read)."""
        rejected = []
        for path in self._entries():
            symbol, reason = self._classify(Path(path).name)
            if symbol is None:
                rejected.append((Path(path).name, reason))
        return rejected

    def foreign_files(self) -> list[str]:
        """The names of :meth:`rejected_files`."""
        return [name for name, _ in self.rejected_files()]

    def fetch(self, symbol: str, *, full: bool = True) -> RawPayload:
        try:
            validate_symbol(symbol, "data_ingestion.symbols")
        except InvalidSymbolError as exc:
            raise SourceError(str(exc)) from None
        path = self._files_by_symbol().get(symbol)
        if path is None:
            raise SourceError(f"symbol '{symbol}' has no CSV file in '{self._folder}'")
        with self._fs.open(path, "rb") as handle:
            content = handle.read()
        return RawPayload(
            symbol=symbol,
            source=self.name,
            format="csv",
            content=content,
            fetched_at=_now(),
            kind="file",
            origin=Path(path).name,
        )
