"""RawPriceArchiveDataset: fetch on save, immutable objects, one manifest per fetch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from stock_mlops.datasets import RawPriceArchiveDataset
from stock_mlops.datasets._storage import write_once_bytes
from stock_mlops.sources.base import PriceRequest
from stock_mlops.sources.files import BundledSource


@pytest.fixture(scope="module")
def real_csv() -> dict[str, bytes]:
    """Real files of the bundled snapshot."""
    source = BundledSource()
    return {s: source.fetch(s).content for s in ("AAPL", "MSFT")}


@pytest.fixture
def folder(tmp_path: Path, real_csv: dict[str, bytes]) -> Path:
    """A source folder holding two real files."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for symbol, content in real_csv.items():
        (incoming / f"{symbol}.csv").write_bytes(content)
    return incoming


def csv_request(folder: Path, symbols: tuple[str, ...] | list[str] = ()) -> PriceRequest:
    """A PriceRequest for the CSV folder source."""
    return PriceRequest(source="csv", symbols=tuple(symbols), csv_dir=str(folder))


def objects(root: Path, symbol: str) -> list[Path]:
    """Archived objects of one symbol, oldest first (names start with the fetch time)."""
    return sorted((root / "csv" / symbol).glob("*.csv"))


def manifests(root: Path) -> list[dict]:
    """Every fetch manifest, oldest first."""
    return [json.loads(p.read_text()) for p in sorted((root / "_manifests").glob("*.json"))]


def test_first_fetch_archives_each_file_as_received(tmp_path, folder, real_csv):
    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))
    assert not archive.exists()

    archive.save(csv_request(folder))

    assert archive.exists()
    for symbol, content in real_csv.items():
        [stored] = objects(root, symbol)
        assert stored.read_bytes() == content
        assert stored.name.endswith("_file.csv")
        assert Path(f"{stored}.sha256").exists()
    [manifest] = manifests(root)
    assert {o["symbol"]: o["status"] for o in manifest["objects"]} == {
        "AAPL": "new",
        "MSFT": "new",
    }
    assert manifest["failures"] == []


def test_load_returns_payloads_with_their_origin(tmp_path, folder, real_csv):
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    archive.save(csv_request(folder))

    loaded = archive.load()

    assert loaded.request.source == "csv"
    assert sorted(loaded.payloads) == ["AAPL", "MSFT"]
    [payload] = loaded.payloads["AAPL"]
    assert payload.content == real_csv["AAPL"]
    assert (payload.kind, payload.format, payload.origin) == ("file", "csv", "AAPL.csv")
    assert loaded.failures == []


def test_unchanged_content_is_not_archived_twice(tmp_path, folder):
    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))
    archive.save(csv_request(folder))
    first = objects(root, "AAPL")

    archive.save(csv_request(folder))

    assert objects(root, "AAPL") == first
    assert len(manifests(root)) == 2
    assert {o["status"] for o in manifests(root)[-1]["objects"]} == {"unchanged"}
    assert [len(v) for v in archive.load().payloads.values()] == [1, 1]


def test_changed_content_creates_a_new_object_and_keeps_the_old_one(tmp_path, folder, real_csv):
    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))
    archive.save(csv_request(folder))
    [old_object] = objects(root, "AAPL")
    revised = real_csv["AAPL"] + b"2024-01-02,187.15,188.44,183.89,185.64,82488700\n"
    (folder / "AAPL.csv").write_bytes(revised)

    archive.save(csv_request(folder))

    aapl = objects(root, "AAPL")
    assert len(aapl) == 2 and aapl[0] == old_object
    assert old_object.read_bytes() == real_csv["AAPL"]  # never overwritten
    assert aapl[1].read_bytes() == revised
    assert len(objects(root, "MSFT")) == 1
    statuses = {o["symbol"]: o["status"] for o in manifests(root)[-1]["objects"]}
    assert statuses == {"AAPL": "new", "MSFT": "unchanged"}

    # A newer complete file supersedes the older one for rebuilding the history.
    payloads = archive.load().payloads["AAPL"]
    assert [p.content for p in payloads] == [revised]


def test_archived_objects_refuse_to_be_overwritten(tmp_path, folder):
    root = tmp_path / "raw"
    RawPriceArchiveDataset(filepath=str(root)).save(csv_request(folder))
    [stored] = objects(root, "MSFT")
    before = stored.read_bytes()
    fs = RawPriceArchiveDataset(filepath=str(root))._fs

    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_once_bytes(fs, str(stored), b"something else")
    assert stored.read_bytes() == before


def test_load_follows_the_latest_request(tmp_path, folder):
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    archive.save(csv_request(folder))
    archive.save(csv_request(folder, ["MSFT"]))

    assert list(archive.load().payloads) == ["MSFT"]


def test_unknown_symbols_and_foreign_files_are_failures_not_errors(tmp_path, folder):
    (folder / "notes.txt").write_text("not prices")
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))

    archive.save(csv_request(folder, ["AAPL", "ZZZZ"]))

    loaded = archive.load()
    assert list(loaded.payloads) == ["AAPL"]
    reasons = {f.symbol: f.reason for f in loaded.failures}
    assert reasons["notes.txt"] == "not a .csv file; ignored"
    assert "symbol 'ZZZZ' has no CSV file" in reasons["ZZZZ"]


def test_every_requested_symbol_failing_is_recorded_for_the_ingestion_node(tmp_path, folder):
    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))

    archive.save(csv_request(folder, ["YYYY", "ZZZZ"]))

    assert [f["symbol"] for f in manifests(root)[0]["failures"]] == ["YYYY", "ZZZZ"]
    loaded = archive.load()
    assert loaded.payloads == {}
    assert [f.symbol for f in loaded.failures] == ["YYYY", "ZZZZ"]


def test_missing_source_folder_is_an_error(tmp_path):
    archive = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    with pytest.raises(DatasetError, match="does not exist"):
        archive.save(csv_request(tmp_path / "nowhere"))


def test_load_before_any_fetch_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no fetch has been archived"):
        RawPriceArchiveDataset(filepath=str(tmp_path / "raw")).load()


def test_bundled_snapshot_on_an_fsspec_filesystem(real_csv):
    archive = RawPriceArchiveDataset(filepath=f"memory://archive-{uuid.uuid4().hex}")
    archive.save(PriceRequest(source="bundled", symbols=("MSFT",)))
    archive.save(PriceRequest(source="bundled", symbols=("MSFT",)))

    [payload] = archive.load().payloads["MSFT"]

    assert payload.content == real_csv["MSFT"]
    assert payload.origin == "snapshot/mag7/MSFT.csv"


class _RecordingSource:
    """Stands in for an API source: serves real bundled bytes and records what was asked."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[bool] = []
        self._snapshot = BundledSource()

    def list_symbols(self) -> None:
        return None

    def fetch(self, symbol: str, *, full: bool):
        import dataclasses
        import datetime as dt

        self.asked.append(full)
        payload = self._snapshot.fetch(symbol)
        # A new fetch time and kind each call, like a real API response.
        return dataclasses.replace(
            payload,
            source=self.name,
            fetched_at=dt.datetime.now(dt.UTC),
            kind="full" if full else "compact",
        )


@pytest.mark.parametrize(("source", "second_full"), [("alphavantage", False), ("alpaca", True)])
def test_full_fetch_first_then_compact_except_for_alpaca(
    tmp_path, monkeypatch, source, second_full
):
    recorder = _RecordingSource(source)
    monkeypatch.setattr(
        "stock_mlops.datasets.raw_prices.make_source", lambda request, calls_used_today=0: recorder
    )
    dataset = RawPriceArchiveDataset(filepath=str(tmp_path / "raw"))
    request = PriceRequest(source=source, symbols=("AAPL",))
    dataset.save(request)
    dataset.save(request)
    # Alpaca's bars are adjusted without an adjusted close: windows cannot be stitched.
    assert recorder.asked == [True, second_full]


def test_a_past_run_date_is_replayed_from_the_archive(tmp_path, folder, real_csv):
    import datetime as dt

    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))
    archive.save(csv_request(folder))
    (folder / "AAPL.csv").write_bytes(b"not even a csv any more")  # the source changed since

    past = PriceRequest(
        source="csv", symbols=("AAPL", "MSFT"), csv_dir=str(folder), as_of=dt.date(2023, 7, 3)
    )
    archive.save(past)

    assert len(objects(root, "AAPL")) == 1  # nothing fetched, nothing new archived
    assert {o["status"] for o in manifests(root)[-1]["objects"]} == {"replayed"}
    loaded = archive.load()
    assert loaded.request.as_of == dt.date(2023, 7, 3)
    assert loaded.payloads["AAPL"][0].content == real_csv["AAPL"]
    # Archived today, long after 2023-07-03: rebuilt from it, and the report will say so.
    assert "bars after 2023-07-03 dropped" in loaded.notes["AAPL"]


# ------------------------------------------------------------------- names that are not symbols
def test_file_names_that_are_not_symbols_are_refused_and_nothing_leaves_the_root(
    tmp_path, folder, real_csv
):
    for name in ("..csv", "...csv", "a b.csv", ".hidden.csv"):
        (folder / name).write_bytes(real_csv["AAPL"])
    root = tmp_path / "store" / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))

    archive.save(csv_request(folder))

    loaded = archive.load()
    assert sorted(loaded.payloads) == ["AAPL", "MSFT"]
    reasons = {f.symbol: f.reason for f in loaded.failures}
    assert set(reasons) == {"..csv", "...csv", "a b.csv", ".hidden.csv"}
    assert all("is not a valid symbol" in reason for reason in reasons.values())
    stored = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "incoming" not in p.parts}
    assert all(p.parts[0] == "store" for p in stored)
    assert {p.name for p in (root / "csv").iterdir()} == {"AAPL", "MSFT"}


def test_a_symbol_that_is_a_path_never_becomes_a_folder(tmp_path):
    root = tmp_path / "store" / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))

    archive.save(PriceRequest(source="bundled", symbols=("../../../../ESC", "AAPL")))

    loaded = archive.load()
    assert list(loaded.payloads) == ["AAPL"]
    (failure,) = loaded.failures
    assert failure.symbol == "../../../../ESC" and "is not a valid symbol" in failure.reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    assert sorted(p.name for p in (root / "bundled").iterdir()) == ["AAPL"]
    with pytest.raises(DatasetError, match="is not a valid symbol"):
        archive._folder("bundled", "..")


def test_an_object_whose_digest_was_never_written_is_not_archived_twice(tmp_path, folder):
    # A run killed between writing an object and its .sha256 file.
    root = tmp_path / "raw"
    archive = RawPriceArchiveDataset(filepath=str(root))
    archive.save(csv_request(folder, ["AAPL"]))
    [stored] = objects(root, "AAPL")
    Path(f"{stored}.sha256").unlink()

    archive.save(csv_request(folder, ["AAPL"]))

    assert objects(root, "AAPL") == [stored]
    assert manifests(root)[-1]["objects"][0]["status"] == "unchanged"
    assert Path(f"{stored}.sha256").read_text() == manifests(root)[0]["objects"][0]["sha256"]


def test_keys_echoed_by_a_source_are_scrubbed_before_archiving(tmp_path, folder, monkeypatch):
    key = "Z9SECRETKEY42"
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", key)
    echoing = folder / "AAPL.csv"
    echoing.write_bytes(
        echoing.read_bytes()
        + f"# served for apikey={key} (https://x.invalid/q?apikey=other-key-77)\n".encode()
    )
    root = tmp_path / "raw"

    RawPriceArchiveDataset(filepath=str(root)).save(csv_request(folder, ["AAPL"]))

    [stored] = objects(root, "AAPL")
    content = stored.read_bytes()
    assert key.encode() not in content and b"other-key-77" not in content
    assert content.endswith(b"# served for apikey=*** (https://x.invalid/q?apikey=***)\n")
