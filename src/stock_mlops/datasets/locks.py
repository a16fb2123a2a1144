"""Leased locks on a storage root, a local folder or S3: one writer at a time, never a stuck lock.

A :class:`StorageLock` is a small JSON object (holder, host, pid, token, lease) at a known path:

- ``StorageLock.for_root(root)``: ``<root>/_locks/run.lock``, held by every Kedro run that writes
  the root (the project hook), by a season replay and by Dagster jobs;
- ``StorageLock.for_file(path)``: ``.<name>.lock`` beside one file, held by the writers of the
  broker account and of the append-only logs from reading the state to saving it.

How it is made safe:

- **S3** (AWS, MinIO, moto's server): taking a free lock is a PUT with ``If-None-Match: *``
  (only one writer can create the object); renewing is a PUT with ``If-Match: <etag>`` and
  releasing or breaking a stale lock a DELETE with ``If-Match``, so a holder whose lock was
  taken over can neither renew nor delete the new holder's lock.
- **Local disk**: every read-decide-write on the lock file happens under ``flock`` on a sibling
  ``.guard`` file (held for milliseconds; the kernel drops it when a process dies), and the lock
  file itself is replaced atomically.
- **Lease**: a holder renews its lock every third of ``lease_seconds`` from a background thread.
  A lock is stale when its lease has expired or, on this machine, when its process is gone; a
  waiter then takes it over and says so. A killed run therefore never blocks the next one for
  longer than its lease, and on the same machine not at all.
- **Fencing**: :meth:`StorageLock.check` raises :class:`LockLostError` when the lease was lost (a
  process paused past its lease); writers call it right before they commit.
- Re-entrant within one thread (a season replay holds the run lock across its daily runs);
  other threads of the same process wait like any other holder.

From the command line (S3 keys and endpoint from the environment)::

    python -m stock_mlops.datasets.locks status data/red
    python -m stock_mlops.datasets.locks clear data/red      # only when its holder is gone
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from stock_mlops.datasets._storage import (
    _is_local,
    _is_s3,
    atomic_write_bytes,
    create_exclusive,
    filesystem,
    pid_alive,
    s3_delete_if_match,
    s3_put_if_match,
    s3_read_with_etag,
)

logger = logging.getLogger(__name__)

RUN_LOCK = "run"
LOCK_FOLDER = "_locks"
DEFAULT_LEASE_SECONDS = 120.0
DEFAULT_WAIT_SECONDS = 600.0
CLEAR_COMMAND = "python -m stock_mlops.datasets.locks clear"


class LockTimeoutError(RuntimeError):
    """The lock stayed held by someone else for the whole wait; the message names the holder."""


class LockLostError(RuntimeError):
    """This holder's lease expired and another writer took the lock over."""


@dataclass(frozen=True)
class LockInfo:
    """What a lock object says about its holder."""

    holder: str
    host: str
    pid: int
    token: str
    purpose: str
    acquired_at: str
    renewed_at: str
    expires_at: str
    lease_seconds: float

    @classmethod
    def from_json(cls, data: bytes) -> LockInfo:
        """Parses a lock object; raises ValueError when it is not one."""
        raw = json.loads(data)
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    def describe(self) -> str:
        """``user@host pid N (purpose) since T, lease until T``."""
        purpose = f" ({self.purpose})" if self.purpose else ""
        return (
            f"{self.holder}@{self.host} pid {self.pid}{purpose} since {self.acquired_at}, "
            f"lease until {self.expires_at}"
        )

    def stale_reason(self, now: dt.datetime | None = None) -> str:
        """Why this lock may be taken over ('' while its holder is alive and renewing)."""
        now = now or _now()
        if dt.datetime.fromisoformat(self.expires_at) < now:
            return f"its lease expired at {self.expires_at}"
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"its process {self.pid} on this machine is gone"
        return ""


# Locks this process holds: lock URL -> [holding thread id, depth, lock]. Guarded by _REGISTRY.
_HELD: dict[str, list[Any]] = {}
_REGISTRY = threading.Lock()


class StorageLock:
    """A leased, re-entrant lock object on a local folder or S3 (see the module docstring).

    Args:
        lock_url: Where the lock object lives (a local path or ``s3://bucket/key``).
        purpose: What the holder is doing, shown to whoever waits (``kedro run --pipelines x``).
        lease_seconds: How long a holder that stopped renewing keeps the lock.
        wait_seconds: How long :meth:`acquire` waits for another holder before giving up.
        poll_seconds: Pause between attempts while waiting.
        credentials: Passed to fsspec (S3 keys).
        fs_args: Passed to fsspec.
        clear_hint: The command that clears this lock, for the timeout message.
    """

    def __init__(
        self,
        lock_url: str,
        *,
        purpose: str = "",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        poll_seconds: float = 0.2,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        clear_hint: str = "",
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        self.url = str(lock_url)
        self._fs, self._protocol, self._path = filesystem(self.url, credentials, fs_args)
        self.purpose = purpose
        self.lease_seconds = float(lease_seconds)
        self.wait_seconds = max(float(wait_seconds), 0.0)
        self.poll_seconds = poll_seconds
        self.clear_hint = clear_hint
        self._token: str | None = None
        self._etag: str | None = None
        self._acquired_at = ""
        self._lost = ""
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ------------------------------------------------------------------------ where
    @classmethod
    def for_root(cls, storage_root: str, name: str = RUN_LOCK, **kwargs: Any) -> StorageLock:
        """The lock of a whole storage root (``<root>/_locks/<name>.lock``)."""
        root = str(storage_root).rstrip("/")
        kwargs.setdefault("clear_hint", f"{CLEAR_COMMAND} {root}")
        return cls(f"{root}/{LOCK_FOLDER}/{name}.lock", **kwargs)

    @classmethod
    def for_file(cls, filepath: str, **kwargs: Any) -> StorageLock:
        """The lock of one file's writers (``.<name>.lock`` beside it)."""
        path = PurePosixPath(str(filepath))
        url = str(filepath)
        parent = url[: -len(path.name)].rstrip("/")
        kwargs.setdefault("clear_hint", f"{CLEAR_COMMAND} --lock {parent}/.{path.name}.lock")
        return cls(f"{parent}/.{path.name}.lock", **kwargs)

    # ------------------------------------------------------------------------ use
    def __enter__(self) -> StorageLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.release_after_error()

    def release_after_error(self) -> None:
        """Releases the lock while another error propagates. If the release fails too (the
        storage that just failed the writer is still gone), that is logged, not raised: the
        error that stopped the writer stays the one reported, and the lock, no longer renewed,
        expires with its lease."""
        try:
            self.release()
        except Exception as exc:  # noqa: BLE001 - any failure here would hide the real error
            logger.warning(
                "could not release the lock %s after an error (%s: %s); it expires %.0f s "
                "after its last renewal, and once this process has exited the next writer on "
                "this machine takes it over at once%s",
                self.url,
                type(exc).__name__,
                exc,
                self.lease_seconds,
                f"; to clear it now: `{self.clear_hint}`" if self.clear_hint else "",
            )

    @property
    def held(self) -> bool:
        """Whether this thread holds the lock (through this or another instance)."""
        with _REGISTRY:
            entry = _HELD.get(self.url)
            return bool(entry) and entry[0] == threading.get_ident()

    def acquire(self) -> None:
        """Takes the lock, waiting up to ``wait_seconds`` for another holder.

        Raises:
            LockTimeoutError: Naming the holder, the lock and how to clear a stale one.
        """
        me = threading.get_ident()
        with _REGISTRY:
            entry = _HELD.get(self.url)
            if entry and entry[0] == me:
                entry[1] += 1
                return
        deadline = time.monotonic() + self.wait_seconds
        announced = False
        while True:
            with _REGISTRY:
                entry = _HELD.get(self.url)
                busy_here = bool(entry)
            holder = None if busy_here else self._try_acquire()
            if not busy_here and holder is None:
                with _REGISTRY:
                    _HELD[self.url] = [me, 1, self]
                self._start_heartbeat()
                return
            if time.monotonic() >= deadline:
                raise LockTimeoutError(self._timeout_message(holder))
            if not announced:
                who = holder.describe() if holder else "another thread of this process"
                logger.warning(
                    "waiting up to %.0f s for the lock %s, held by %s",
                    self.wait_seconds,
                    self.url,
                    who,
                )
                announced = True
            time.sleep(min(self.poll_seconds, max(deadline - time.monotonic(), 0.0)))

    def release(self) -> None:
        """Gives the lock back (the outermost release of this thread deletes the object)."""
        with _REGISTRY:
            entry = _HELD.get(self.url)
            if not entry or entry[0] != threading.get_ident():
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[self.url]
            owner: StorageLock = entry[2]
        owner._stop_heartbeat()
        owner._delete_own()

    def check(self) -> None:
        """Raises :class:`LockLostError` if this thread's lease was lost (call before committing).

        Raises:
            LockLostError: The lease expired and the lock may now be someone else's.
        """
        with _REGISTRY:
            entry = _HELD.get(self.url)
            owner: StorageLock | None = entry[2] if entry else None
        if owner is None:
            raise LockLostError(f"the lock {self.url} is not held by this thread")
        if owner._lost:
            raise LockLostError(f"the lock {self.url} was lost: {owner._lost}")
        current = owner._read()
        if current is None or current[0].token != owner._token:
            owner._lost = "its object now belongs to another holder or is gone"
            raise LockLostError(f"the lock {self.url} was lost: {owner._lost}")

    def info(self) -> LockInfo | None:
        """The current holder, or None when the lock is free (or unreadable)."""
        current = self._read()
        return current[0] if current else None

    def clear(self) -> LockInfo | None:
        """Deletes the lock whoever holds it (for a stale lock, by hand); returns what it held."""
        with self._guard():
            current = self._read()
            if _is_s3(self._fs):
                if current is not None:
                    s3_delete_if_match(self._fs, self._path, current[1])
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._fs.rm(self._path)
        return current[0] if current else None

    # ------------------------------------------------------------------------ internals
    def _new_info(self) -> LockInfo:
        now = _now()
        return LockInfo(
            holder=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            token=self._token or uuid.uuid4().hex,
            purpose=self.purpose,
            acquired_at=self._acquired_at or _stamp(now),
            renewed_at=_stamp(now),
            expires_at=_stamp(now + dt.timedelta(seconds=self.lease_seconds)),
            lease_seconds=self.lease_seconds,
        )

    def _try_acquire(self) -> LockInfo | None:
        """One attempt: None when this instance now holds the lock, else the live holder."""
        self._token, self._acquired_at, self._lost = uuid.uuid4().hex, "", ""
        with self._guard():
            current = self._read()
            if current is not None:
                info, etag = current
                reason = info.stale_reason()
                if not reason:
                    return info
                logger.warning(
                    "taking over the stale lock %s of %s: %s", self.url, info.describe(), reason
                )
                if _is_s3(self._fs) and not s3_delete_if_match(self._fs, self._path, etag):
                    return self._read_info_or_unknown()
            mine = self._new_info()
            self._acquired_at = mine.acquired_at
            if _is_s3(self._fs):
                if not create_exclusive(self._fs, self._path, mine.to_json()):
                    return self._read_info_or_unknown()
                current = self._read()
                if current is None or current[0].token != mine.token:
                    return self._read_info_or_unknown()
                self._etag = current[1]
            else:
                atomic_write_bytes(self._fs, self._path, mine.to_json())
        return None

    def _read_info_or_unknown(self) -> LockInfo:
        current = self._read()
        if current is not None:
            return current[0]
        now = _stamp(_now())
        return LockInfo("unknown", "unknown", -1, "", "", now, now, now, 0.0)

    def _read(self) -> tuple[LockInfo, str] | None:
        """The lock object and its version (S3 ETag; '' locally), None when there is none."""
        if _is_s3(self._fs):
            found = s3_read_with_etag(self._fs, self._path)
            if found is None:
                return None
            data, etag = found
        else:
            try:
                with open(self._path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:
                return None
            etag = ""
        try:
            return LockInfo.from_json(data), etag
        except (ValueError, KeyError, TypeError):
            # Not written by this class (every write is atomic): treat it as an expired lock.
            logger.warning("the lock object %s is unreadable; treating it as stale", self.url)
            return LockInfo("unreadable", "", -1, "", "", "", "", _stamp(_EPOCH), 0.0), etag

    def _renew(self) -> None:
        with self._guard():
            if _is_s3(self._fs):
                etag = s3_put_if_match(self._fs, self._path, self._new_info().to_json(), self._etag)
                if etag is None:
                    self._lost = "it was taken over or deleted while this process held it"
                else:
                    self._etag = etag
            else:
                current = self._read()
                if current is None or current[0].token != self._token:
                    self._lost = "it was taken over or deleted while this process held it"
                else:
                    atomic_write_bytes(self._fs, self._path, self._new_info().to_json())
        if self._lost:
            logger.error("lost the lock %s: %s", self.url, self._lost)

    def _delete_own(self) -> None:
        with self._guard():
            if _is_s3(self._fs):
                if self._etag:
                    s3_delete_if_match(self._fs, self._path, self._etag)
            else:
                current = self._read()
                if current is not None and current[0].token == self._token:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path)
        self._token = self._etag = None

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        interval = self.lease_seconds / 3

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self._renew()
                except Exception as exc:  # noqa: BLE001 - a failed renewal must not kill the run
                    logger.warning("could not renew the lock %s: %s", self.url, exc)
                if self._lost:
                    return

        self._heartbeat = threading.Thread(target=beat, name=f"lease:{self.url}", daemon=True)
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=10)
        self._heartbeat = None

    @contextlib.contextmanager
    def _guard(self):
        """Serialises every read-decide-write on a local lock file among local processes."""
        if not _is_local(self._fs):
            yield
            return
        import fcntl  # noqa: PLC0415 - POSIX only, and only local locks need it

        os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
        fd = os.open(f"{self._path}.guard", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _timeout_message(self, holder: LockInfo | None) -> str:
        who = holder.describe() if holder else "another thread of this process"
        clear = (
            f"; if that run is gone for good, clear it with `{self.clear_hint}` (a holder that "
            "stopped is also taken over once its lease expires)"
            if self.clear_hint
            else ""
        )
        return (
            f"the lock {self.url} is held by {who}; waited {self.wait_seconds:g} s "
            f"(storage.lock.wait_seconds){clear}"
        )


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def main(argv: list[str] | None = None) -> int:
    """``status`` or ``clear`` a storage root's run lock (or any lock object with ``--lock``)."""
    parser = argparse.ArgumentParser(prog="python -m stock_mlops.datasets.locks")
    parser.add_argument("action", choices=["status", "clear"])
    parser.add_argument("storage_root", nargs="?", help="local path or s3://bucket/prefix")
    parser.add_argument("--name", default=RUN_LOCK, help="lock name under <root>/_locks")
    parser.add_argument("--lock", help="the URL of a lock object instead of a root's lock")
    args = parser.parse_args(argv)
    if not args.lock and not args.storage_root:
        parser.error("give a storage root or --lock")
    lock = (
        StorageLock(args.lock) if args.lock else StorageLock.for_root(args.storage_root, args.name)
    )
    info = lock.info()
    out = sys.stdout
    if args.action == "status":
        if info is None:
            out.write(f"{lock.url}: free\n")
        else:
            stale = info.stale_reason()
            out.write(
                f"{lock.url}: held by {info.describe()}{f' (stale: {stale})' if stale else ''}\n"
            )
        return 0
    if info is not None and not info.stale_reason():
        out.write(
            f"{lock.url} is held by {info.describe()}, whose lease is current: clearing it "
            "anyway (make sure that run is really gone)\n"
        )
    cleared = lock.clear()
    out.write(f"{lock.url}: {'cleared, was ' + cleared.describe() if cleared else 'was free'}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
