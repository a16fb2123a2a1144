"""StorageLock between real processes, on a local folder and on moto's S3 server."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fakes.s3 import env_for, moto_s3
from helpers import PROJECT

from stock_mlops.datasets.locks import (
    LockInfo,
    LockLostError,
    LockTimeoutError,
    StorageLock,
    main,
)

BUCKET = "lock-tests"

HOLDER = textwrap.dedent(
    """
    import sys, time, pathlib
    from stock_mlops.datasets.locks import StorageLock
    root, release = sys.argv[1], pathlib.Path(sys.argv[2])
    lease = float(sys.argv[3])
    lock = StorageLock.for_root(root, purpose="the holder of the test", lease_seconds=lease)
    lock.acquire()
    print("held", flush=True)
    while not release.exists():
        time.sleep(0.05)
    lock.release()
    print("released", flush=True)
    """
)


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path, monkeypatch) -> str:
    """A storage root on a local folder or in a bucket of moto's server."""
    if request.param == "local":
        yield str(tmp_path / "root")
        return
    with moto_s3(monkeypatch, BUCKET) as endpoint:
        monkeypatch.setenv("TEST_S3_ENDPOINT", endpoint)
        yield f"s3://{BUCKET}/team"


def start_holder(root: str, release: Path, lease: float = 30.0) -> subprocess.Popen:
    env = {
        **(env_for(os.environ["TEST_S3_ENDPOINT"]) if root.startswith("s3://") else os.environ),
        "PYTHONPATH": str(PROJECT / "src"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, root, str(release), str(lease)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    assert line.strip() == "held", process.stderr.read()
    return process


def test_a_second_process_waits_then_stops_naming_the_holder_and_the_fix(root, tmp_path):
    release = tmp_path / "release"
    holder = start_holder(root, release)
    try:
        waiter = StorageLock.for_root(root, purpose="the waiter", wait_seconds=0.6)
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            waiter.acquire()
        assert 0.5 < time.monotonic() - started < 10
        message = str(caught.value)
        assert f"pid {holder.pid} (the holder of the test)" in message
        assert f"{root}/_locks/run.lock" in message
        assert f"python -m stock_mlops.datasets.locks clear {root}" in message
        assert "waited 0.6 s (storage.lock.wait_seconds)" in message
    finally:
        release.touch()
        holder.wait(timeout=30)
    assert holder.stdout.read().strip() == "released"
    # Once the holder has let go, the lock is free at once.
    with StorageLock.for_root(root, wait_seconds=0) as lock:
        assert lock.info().pid == os.getpid()
    assert StorageLock.for_root(root).info() is None


def test_a_waiter_gets_the_lock_when_the_holder_finishes(tmp_path):
    root = str(tmp_path / "root")
    release = tmp_path / "release"
    holder = start_holder(root, release)
    threading.Timer(1.0, release.touch).start()
    started = time.monotonic()
    with StorageLock.for_root(root, wait_seconds=30, poll_seconds=0.05):
        waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert 0.9 < waited < 20


def test_a_killed_holder_on_this_machine_is_taken_over_at_once(root, tmp_path, caplog):
    holder = start_holder(root, tmp_path / "never", lease=600)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    caplog.set_level(logging.WARNING, logger="stock_mlops.datasets.locks")

    started = time.monotonic()
    with StorageLock.for_root(root, wait_seconds=5):
        assert time.monotonic() - started < 3, "no wait for the 600 s lease"
    assert f"its process {holder.pid} on this machine is gone" in caplog.text


def _foreign(root_lock: StorageLock, expires_in: float) -> None:
    """Writes a lock held by a process on another machine, with its lease ending then."""
    now = dt.datetime.now(dt.UTC)
    info = LockInfo(
        holder="someone",
        host="another-machine",
        pid=1,
        token="t",
        purpose="a run elsewhere",
        acquired_at=now.isoformat(),
        renewed_at=now.isoformat(),
        expires_at=(now + dt.timedelta(seconds=expires_in)).isoformat(),
        lease_seconds=60.0,
    )
    root_lock._fs.pipe_file(root_lock._path, info.to_json())


def test_a_lock_of_another_machine_holds_until_its_lease_expires(root):
    lock = StorageLock.for_root(root, wait_seconds=0.3)
    _foreign(lock, expires_in=60)
    with pytest.raises(LockTimeoutError, match="someone@another-machine pid 1 .a run elsewhere."):
        lock.acquire()
    _foreign(lock, expires_in=-1)
    with lock:
        assert lock.info().host != "another-machine"


def test_the_holder_renews_its_lease_so_a_slow_run_keeps_its_lock(root):
    lock = StorageLock.for_root(root, lease_seconds=1.2)
    with lock:
        first = lock.info()
        time.sleep(2.0)  # longer than the lease: only renewal keeps it
        later = lock.info()
        assert later.token == first.token and later.expires_at > first.expires_at
        assert not later.stale_reason()
        lock.check()


def test_a_lost_lease_is_detected_before_committing(root):
    lock = StorageLock.for_root(root)
    with lock:
        StorageLock.for_root(root).clear()  # someone cleared it by hand
        with pytest.raises(LockLostError, match="was lost"):
            lock.check()


def test_re_entrant_in_one_thread_exclusive_between_threads(tmp_path):
    root = str(tmp_path / "root")
    lock = StorageLock.for_root(root, wait_seconds=0.3)
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            StorageLock.for_root(root, wait_seconds=0.3).acquire()
            outcome.append("acquired")
        except LockTimeoutError as exc:
            outcome.append(str(exc))

    with lock, StorageLock.for_root(root, wait_seconds=0):  # the same thread: no wait
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert "another thread of this process" in outcome[0]
    assert lock.info() is None  # the outermost release deleted it


def test_status_and_clear_from_the_command_line(tmp_path, capsys):
    root = str(tmp_path / "root")
    assert main(["status", root]) == 0
    assert capsys.readouterr().out.strip().endswith("run.lock: free")
    lock = StorageLock.for_root(root)
    _foreign(lock, expires_in=-5)
    main(["status", root])
    assert "(stale: its lease expired at" in capsys.readouterr().out
    assert main(["clear", root]) == 0
    assert "cleared, was someone@another-machine" in capsys.readouterr().out
    assert lock.info() is None


def test_a_corrupt_lock_object_is_treated_as_stale(tmp_path):
    root = tmp_path / "root"
    (root / "_locks").mkdir(parents=True)
    (root / "_locks" / "run.lock").write_text("{not json")
    with StorageLock.for_root(str(root), wait_seconds=0) as lock:
        assert json.loads((root / "_locks" / "run.lock").read_text())["pid"] == os.getpid()
        assert lock.held
