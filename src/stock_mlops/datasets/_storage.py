"""Small fsspec helpers shared by the custom datasets: one place for "never a half-written file".

- :func:`atomic_write_bytes`: readers see the old or the new content, never a part.
- :func:`create_exclusive`: a new object that refuses to replace one that exists, atomically
  (``os.link`` of a complete temporary file on a local disk; a PUT with ``If-None-Match: *`` on
  S3), so two writers racing for one name cannot both win.
- Temporary files are named ``.<name>.tmp-<host>-<pid>-<random>``: the next save of the same
  target removes those whose writer is dead (same machine, process gone) or that are older than
  :data:`ORPHAN_AGE_SECONDS`, so a ``kill -9`` mid-save leaves nothing behind for long.
- :func:`check_bucket`: an ``s3://`` root whose bucket does not exist is an error (a misspelled
  bucket would otherwise be created and filled), unless its creation is asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import get_protocol_and_path

logger = logging.getLogger(__name__)

# A temporary file from another machine (or whose writer cannot be checked) is an orphan once
# it is this old: no save here takes an hour.
ORPHAN_AGE_SECONDS = 3600.0
_TMP_MARK = ".tmp-"


def filesystem(
    filepath: str, credentials: dict[str, Any] | None = None, fs_args: dict | None = None
):
    """Returns ``(fs, protocol, path)`` for a local path or URL (s3://, memory://, ...)."""
    protocol, path = get_protocol_and_path(str(filepath))
    options = {**(credentials or {}), **(fs_args or {})}
    if protocol == "file":
        options.setdefault("auto_mkdir", True)
    return fsspec.filesystem(protocol, **options), protocol, path


def host_tag() -> str:
    """Eight hex digits naming this machine in temporary names (host names can be long)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temporary_sibling(path: str) -> str:
    """A hidden name next to ``path`` for writing before the final rename.

    The name carries this machine and process, so that a later save can tell an orphan (its
    writer was killed) from the temporary file of a save still running.
    """
    p = PurePosixPath(path)
    return str(
        p.with_name(f".{p.name}{_TMP_MARK}{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    )


def sweep_temporaries(fs, path: str) -> list[str]:
    """Removes orphaned temporary files left by killed saves in the folder of ``path``.

    Every orphan in the folder goes, not only those of ``path``: files written under a new
    name each time (the raw archive's timestamped manifests and checksums) leave orphans that
    no later save of the same name would ever find. A temporary file is an orphan when its
    writer ran on this machine and is no longer running, or when it is older than
    :data:`ORPHAN_AGE_SECONDS`. Anything else may belong to a save in progress and is left alone.

    Args:
        fs: The filesystem holding ``path``.
        path: The target path (not a URL).

    Returns:
        The removed paths.
    """
    p = PurePosixPath(path)
    parent = str(p.parent)
    try:
        entries = fs.ls(parent, detail=True, refresh=True) if not _is_local(fs) else None
    except FileNotFoundError:
        return []
    if entries is None:
        try:
            names = os.listdir(parent)
        except FileNotFoundError:
            return []
        entries = [{"name": f"{parent}/{name}"} for name in names if _TMP_MARK in name]
    removed = []
    for entry in entries:
        name = PurePosixPath(entry["name"]).name
        if not name.startswith(".") or _TMP_MARK not in name:
            continue
        if not _is_orphan(fs, entry, name.rpartition(_TMP_MARK)[2]):
            continue
        try:
            fs.rm(entry["name"], recursive=True)
        except FileNotFoundError:
            continue  # another save swept it first
        removed.append(entry["name"])
    if removed:
        logger.warning(
            "removed %d temporary file(s) of an interrupted save of '%s': %s",
            len(removed),
            path,
            ", ".join(PurePosixPath(r).name for r in removed),
        )
    return removed


def _is_orphan(fs, entry: dict[str, Any], tail: str) -> bool:
    parts = tail.split("-")
    if len(parts) == 3 and parts[0] == host_tag() and parts[1].isdigit():
        return not pid_alive(int(parts[1]))
    modified = _modified(fs, entry)
    if modified is None:
        return False
    return (dt.datetime.now(dt.UTC) - modified).total_seconds() > ORPHAN_AGE_SECONDS


def _modified(fs, entry: dict[str, Any]) -> dt.datetime | None:
    if _is_local(fs):
        try:
            return dt.datetime.fromtimestamp(os.stat(entry["name"]).st_mtime, dt.UTC)
        except FileNotFoundError:
            return None
    stamp = entry.get("LastModified") or entry.get("last_modified") or entry.get("mtime")
    if isinstance(stamp, dt.datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            # The state follows the parenthesised command name; Z is a zombie (killed, unreaped).
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def atomic_write_bytes(fs, path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old or the new content, never a part.

    On a local disk the bytes go to a hidden sibling and are renamed over the target (atomic on
    POSIX); orphaned siblings of killed saves are swept first. On object stores a single PUT is
    already atomic, and no folder is "made": on S3 that would create a missing bucket.
    """
    if _is_local(fs):
        fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        sweep_temporaries(fs, path)
        tmp = temporary_sibling(path)
        try:
            with fs.open(tmp, "wb") as handle:
                handle.write(data)
            fs.mv(tmp, path)
        finally:
            if fs.exists(tmp):
                fs.rm(tmp)
    else:
        fs.pipe_file(path, data)


def write_once_bytes(fs, path: str, data: bytes) -> None:
    """Writes a new immutable object; refuses to replace an existing one."""
    if not create_exclusive(fs, path, data):
        raise FileExistsError(f"refusing to overwrite immutable object '{path}'")


def create_exclusive(fs, path: str, data: bytes) -> bool:
    """Creates ``path`` holding ``data`` only if nothing exists there yet, atomically.

    Locally a complete temporary file is hard-linked to the name (``link`` fails when the name
    exists, and the linked file is complete from its first instant); on S3 a PUT with
    ``If-None-Match: *`` (AWS, MinIO and moto's server honour it).

    Returns:
        True when this call created the object, False when one already existed.
    """
    if _is_local(fs):
        return _create_local(fs, path, data)
    if not _is_s3(fs):
        if fs.exists(path):
            return False
        fs.pipe_file(path, data)
        return True
    bucket, key = _bucket_and_key(path)
    try:
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if _precondition_failed(exc):
            return False
        raise
    finally:
        fs.invalidate_cache(path)


def _create_local(fs, path: str, data: bytes) -> bool:
    fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
    sweep_temporaries(fs, path)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def s3_put_if_match(fs, path: str, data: bytes, etag: str) -> str | None:
    """Replaces an S3 object only if it still has ``etag``; returns the new ETag or None."""
    bucket, key = _bucket_and_key(path)
    try:
        answer = fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=etag)
    except (FileNotFoundError, FileExistsError):
        return None
    except OSError as exc:
        if _precondition_failed(exc):
            return None
        raise
    finally:
        fs.invalidate_cache(path)
    return answer["ETag"]


def s3_delete_if_match(fs, path: str, etag: str) -> bool:
    """Deletes an S3 object only if it still has ``etag``; True when it was deleted."""
    bucket, key = _bucket_and_key(path)
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
    except (FileNotFoundError, FileExistsError):
        return False
    except OSError as exc:
        if _precondition_failed(exc):
            return False
        raise
    finally:
        fs.invalidate_cache(path)
    return True


def s3_read_with_etag(fs, path: str) -> tuple[bytes, str] | None:
    """An S3 object's bytes and ETag read in one GET (None when absent)."""
    bucket, key = _bucket_and_key(path)
    try:
        answer = fs.call_s3("get_object", Bucket=bucket, Key=key)
    except FileNotFoundError:
        return None
    from fsspec.asyn import sync  # noqa: PLC0415 - only S3 paths need it

    body = answer["Body"]
    try:
        data = sync(fs.loop, body.read)
    finally:
        body.close()
    return data, answer["ETag"]


def _precondition_failed(exc: BaseException) -> bool:
    cause = exc.__cause__
    response = getattr(cause, "response", None) or {}
    code = (response.get("Error") or {}).get("Code", "")
    return code in ("PreconditionFailed", "412") or "pre-condition" in str(exc).lower()


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.partition("/")
    return bucket, key


def check_bucket(
    storage_root: str,
    *,
    create: bool = False,
    credentials: dict[str, Any] | None = None,
    fs_args: dict[str, Any] | None = None,
) -> None:
    """Stops a run on an ``s3://`` root whose bucket is missing, or creates it when asked.

    Args:
        storage_root: The run's storage root (local roots are not checked).
        create: ``storage.create_bucket``: create a missing bucket instead of failing.
        credentials: Passed to s3fs.
        fs_args: Passed to s3fs.

    Raises:
        StorageError: The bucket does not exist (or cannot be reached) and was not to be created.
    """
    fs, protocol, path = filesystem(storage_root, credentials, fs_args)
    if protocol not in ("s3", "s3a"):
        return
    bucket = path.split("/", 1)[0]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    where = f" at {endpoint}" if endpoint else ""
    try:
        fs.call_s3("head_bucket", Bucket=bucket)
        return
    except FileNotFoundError:
        pass
    except PermissionError as exc:
        raise StorageError(
            f"the bucket '{bucket}' of storage_root '{storage_root}'{where} refuses access "
            f"({exc}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        ) from None
    except OSError as exc:
        raise StorageError(
            f"cannot reach the bucket '{bucket}' of storage_root '{storage_root}'{where}: {exc}"
        ) from None
    if not create:
        raise StorageError(
            f"the bucket '{bucket}' of storage_root '{storage_root}' does not exist{where}: "
            "check its spelling, or create it (e.g. `aws s3 mb s3://"
            f"{bucket}`, or --params storage.create_bucket=true)"
        )
    fs.call_s3("create_bucket", Bucket=bucket)
    fs.invalidate_cache()
    logger.warning("created the missing bucket '%s'%s (storage.create_bucket=true)", bucket, where)


class StorageError(RuntimeError):
    """The storage root cannot be used; the message names it and what to do."""


def _is_local(fs) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _is_s3(fs) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool({"s3", "s3a"} & set(protocols))
