"""Faults on S3 (moto's server in its own process, see ``fakes/s3_process.py``): the S3 server
dies in the middle of an append to a log, comes back holding what it stored before, and the
re-run leaves every row exactly once. Object writes are atomic on S3 (a PUT replaces the whole
object or nothing), so the cases that apply are the server dying before a write reaches it,
after it stored a write but before answering, and the lock object a dead writer leaves behind.
The same on ``kedro run``s: ``benchmarks/bench_fault_sweep.py --s3``.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

import boto3
import pandas as pd
import pytest
from fakes.s3_process import S3Process

BUCKET = "fault-bucket"
KEY = "logs/account_history.parquet"

_CHILD = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from stock_mlops.datasets.tables import AppendOnlyParquetDataset

    path, day = sys.argv[1], sys.argv[2]
    log = AppendOnlyParquetDataset(filepath=path, key_columns=["date"])
    log.save(pd.DataFrame({"date": [day], "equity": [1.0]}))
    """
)


def _append(s3: S3Process, day: str) -> subprocess.CompletedProcess:
    from faults.harness import PROJECT

    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(PROJECT / "src"),
        **s3.env(),
        # One retry, not botocore's default four, against a server that is gone: the error
        # comes in seconds.
        "AWS_MAX_ATTEMPTS": "2",
    }
    return subprocess.run(
        [sys.executable, "-c", _CHILD, f"s3://{BUCKET}/{KEY}", day],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stored(s3: S3Process) -> tuple[list[str], list[str]]:
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    return list(pd.read_parquet(io.BytesIO(body))["date"]), keys


@pytest.mark.slow
def test_s3_server_dying_mid_append_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    s3 = S3Process(tmp_path)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    log = rf"^/{BUCKET}/{KEY}$"
    # Dies at the second PUT of the log's object (the first append's is the first), before
    # moto sees it: that write never reaches the store.
    s3.start(die_on=("PUT", log, 2, "before"))
    try:
        boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        first = _append(s3, "2024-01-02")
        assert first.returncode == 0, first.stderr
        _append_dies(s3, "2024-01-03")

        # Back with what it stored; this time it stores the next PUT, then dies unanswered.
        s3.restart(die_on=("PUT", log, 1, "after"))
        dates, keys = _stored(s3)
        assert dates == ["2024-01-02"]
        # The dead writer's lock object is still there (its DELETE never arrived)...
        assert any(k.endswith(".lock") for k in keys), keys
        # ...and the next writer takes it over (its process is gone).
        _append_dies(s3, "2024-01-03")

        s3.restart()
        dates, _ = _stored(s3)
        assert dates == ["2024-01-02", "2024-01-03"]  # stored, though never acknowledged
        # The re-run appends the same day again: the log keeps it once.
        again = _append(s3, "2024-01-03")
        assert again.returncode == 0, again.stderr
        dates, keys = _stored(s3)
        assert dates == ["2024-01-02", "2024-01-03"]
        assert [k for k in keys if k.endswith(".lock") or ".tmp-" in k] == []
    finally:
        s3.kill()


def _append_dies(s3: S3Process, day: str) -> None:
    failed = _append(s3, day)
    assert s3.died(), f"the S3 server did not die: {failed.stderr[-2000:]}"
    assert failed.returncode != 0
    # The error names the dataset and where its write went: the bucket and the object.
    assert f"s3://{BUCKET}/{KEY}" in failed.stderr, failed.stderr[-2000:]
    assert "Failed while saving data to dataset" in failed.stderr


@pytest.mark.slow
def test_a_lock_the_dead_server_cannot_release_does_not_hide_the_writers_error(
    tmp_path, monkeypatch, caplog
):
    # Found by the fault sweep: the S3 server died as the broker account was saved, and the
    # error reported was the account lock's failed DELETE, not the failed write.
    from stock_mlops.datasets.locks import StorageLock

    s3 = S3Process(tmp_path)
    for name, value in {**s3.env(), "AWS_MAX_ATTEMPTS": "2"}.items():
        monkeypatch.setenv(name, value)
    s3.start()
    lock_url = f"s3://{BUCKET}/broker/.account.lock"
    caplog.set_level(logging.WARNING, logger="stock_mlops")
    try:
        boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        lock = StorageLock(lock_url, purpose="test", clear_hint="clear-command")
        with pytest.raises(RuntimeError, match="the write failed"), lock:
            s3.kill()
            raise RuntimeError("the write failed")
    finally:
        s3.kill()
    assert f"could not release the lock {lock_url} after an error" in caplog.text
    assert "clear-command" in caplog.text
    # Released as far as this process goes: it can take the lock again once storage is back.
    assert not lock.held
