"""The storage helpers: orphaned temporary files, exclusive creation, and missing buckets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import boto3
import pandas as pd
import pytest
from fakes.s3 import moto_s3

from stock_mlops.datasets import AtomicDataset
from stock_mlops.datasets._storage import (
    ORPHAN_AGE_SECONDS,
    StorageError,
    atomic_write_bytes,
    check_bucket,
    create_exclusive,
    filesystem,
    host_tag,
    sweep_temporaries,
)


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_orphans_of_killed_saves_are_swept_and_live_ones_kept(tmp_path):
    target = tmp_path / "prices.parquet"
    mine = tmp_path / f".prices.parquet.tmp-{host_tag()}-{os.getpid()}-aaaaaaaaaaaa"
    killed = tmp_path / f".prices.parquet.tmp-{host_tag()}-{dead_pid()}-bbbbbbbbbbbb"
    elsewhere_old = tmp_path / ".prices.parquet.tmp-0badc0de-17-cccccccccccc"
    elsewhere_new = tmp_path / ".prices.parquet.tmp-0badc0de-18-dddddddddddd"
    legacy = tmp_path / ".prices.parquet.tmp-eeeeeeeeeeee"  # the old naming, no writer named
    other = tmp_path / ".features.parquet.tmp-0badc0de-19-ffffffffffff"
    for path in (mine, killed, elsewhere_old, elsewhere_new, legacy, other):
        path.write_bytes(b"half a file")
    old = time.time() - ORPHAN_AGE_SECONDS - 60
    os.utime(elsewhere_old, (old, old))
    os.utime(legacy, (old, old))

    fs, _, path = filesystem(str(target))
    removed = sweep_temporaries(fs, path)

    assert sorted(os.path.basename(p) for p in removed) == sorted(
        [killed.name, elsewhere_old.name, legacy.name]
    )
    assert mine.exists() and elsewhere_new.exists() and other.exists()


def test_orphans_of_other_names_in_the_folder_are_swept_too(tmp_path):
    # The fault sweep's find: a run killed while writing the raw archive's manifest (a new,
    # timestamped name every run) left a temporary file no later save of that name removes.
    manifests = tmp_path / "_manifests"
    manifests.mkdir()
    orphan = manifests / f".20240102T000000000000Z.json.tmp-{host_tag()}-{dead_pid()}-0123456789ab"
    running = manifests / f".20240102T000000000001Z.json.tmp-{host_tag()}-{os.getpid()}-abcdef"
    for path in (orphan, running):
        path.write_bytes(b'{"half": ')
    fs, _, path = filesystem(str(manifests / "20240103T000000000000Z.json"))

    atomic_write_bytes(fs, path, b"{}")

    assert sorted(p.name for p in manifests.iterdir()) == sorted(
        [running.name, "20240103T000000000000Z.json"]
    )


def test_the_next_save_of_a_table_removes_what_a_killed_save_left(tmp_path):
    target = tmp_path / "prices.parquet"
    orphan = tmp_path / f".prices.parquet.tmp-{host_tag()}-{dead_pid()}-0123456789ab"
    orphan.write_bytes(b"PAR1 and then the process was killed")
    dataset = AtomicDataset(dataset="pandas.ParquetDataset", filepath=str(target))

    dataset.save(pd.DataFrame({"a": [1, 2]}))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["prices.parquet"]
    assert dataset.load()["a"].tolist() == [1, 2]


def test_exclusive_creation_has_one_winner_among_racing_threads(tmp_path):
    fs, _, path = filesystem(str(tmp_path / "journal" / "0000000001.json"))
    barrier = threading.Barrier(8)
    winners: list[int] = []

    def race(i: int) -> None:
        barrier.wait()
        if create_exclusive(fs, path, f"writer {i}".encode()):
            winners.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert fs.cat_file(path) == f"writer {winners[0]}".encode()
    assert sorted(p.name for p in (tmp_path / "journal").iterdir()) == ["0000000001.json"]


def test_on_s3_exclusive_creation_refuses_an_existing_object(monkeypatch):
    with moto_s3(monkeypatch, "exclusive") as _:
        fs, _, path = filesystem("s3://exclusive/journal/0000000001.json")
        assert create_exclusive(fs, path, b"first")
        assert not create_exclusive(fs, path, b"second")
        assert fs.cat_file(path) == b"first"


def test_a_missing_bucket_is_an_error_naming_it_unless_its_creation_is_asked_for(monkeypatch):
    with moto_s3(monkeypatch) as endpoint:
        with pytest.raises(StorageError) as caught:
            check_bucket("s3://stock-mlpos/red")
        message = str(caught.value)
        assert "the bucket 'stock-mlpos' of storage_root 's3://stock-mlpos/red' does not exist" in (
            message
        )
        assert endpoint in message and "storage.create_bucket=true" in message
        # Saving into it does not create it either.
        fs, _, path = filesystem("s3://stock-mlpos/red/03_primary/x.json")
        with pytest.raises(FileNotFoundError):
            atomic_write_bytes(fs, path, b"{}")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

        def buckets() -> set[str]:
            return {b["Name"] for b in client.list_buckets()["Buckets"]}

        assert "stock-mlpos" not in buckets()
        check_bucket("s3://stock-mlpos/red", create=True)
        assert "stock-mlpos" in buckets()
        check_bucket("s3://stock-mlpos/red")  # exists now
        check_bucket("data/red")  # local roots are not checked
