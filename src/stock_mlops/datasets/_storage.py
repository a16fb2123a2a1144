"""Small fsspec helpers shared by the custom datasets: one place for "never a half-written file"."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import get_protocol_and_path


def filesystem(
    filepath: str, credentials: dict[str, Any] | None = None, fs_args: dict | None = None
):
    """Returns ``(fs, protocol, path)`` for a local path or URL (s3://, memory://, ...)."""
    protocol, path = get_protocol_and_path(str(filepath))
    options = {**(credentials or {}), **(fs_args or {})}
    if protocol == "file":
        options.setdefault("auto_mkdir", True)
    return fsspec.filesystem(protocol, **options), protocol, path


def temporary_sibling(path: str) -> str:
    """A hidden name next to ``path`` for writing before the final rename."""
    p = PurePosixPath(path)
    return str(p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:12]}"))


def atomic_write_bytes(fs, path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old or the new content, never a part.

    On a local disk the bytes go to a hidden sibling and are renamed over the target (atomic on
    POSIX). On object stores a single PUT is already atomic.
    """
    parent = str(PurePosixPath(path).parent)
    fs.makedirs(parent, exist_ok=True)
    if _is_local(fs):
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
    if fs.exists(path):
        raise FileExistsError(f"refusing to overwrite immutable object '{path}'")
    atomic_write_bytes(fs, path, data)


def _is_local(fs) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
