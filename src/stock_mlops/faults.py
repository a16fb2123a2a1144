"""Fault injection for the fault suite (``tests/faults``).

Absent from normal runs: the hook is registered only when ``STOCK_MLOPS_FAULT`` is set, and the
datasets contain no fault code at all. The harness sets::

    STOCK_MLOPS_FAULT=<action>@<point>
        action  kill   SIGKILL this process at the point (nothing is flushed, no handler runs)
                wait   block at the point until the file STOCK_MLOPS_FAULT_RELEASE exists
                trace  only record (see below)
        point   before:<node>     when the node's inputs are loaded, before it runs: every
                                  earlier node's outputs are saved
                end               after the last node, before the run ends (the run lock and
                                  MLflow run are still open)
                saved:<dataset>   right after <dataset> was saved
                save:<dataset>#k  inside the save of <dataset>, right before its k-th change
                                  of a file under STOCK_MLOPS_FAULT_ROOT (a file opened for
                                  writing, a rename, a link, a removal): a kill between
                                  writing a temporary file and renaming it, between a journal
                                  entry and the state file, and so on
    STOCK_MLOPS_FAULT_TRACE=<file>  appends one JSON line per node start and per save, with the
                                    file changes the save made (event and file name), so the
                                    harness can plan every kill point of a pipeline.

File changes are seen through CPython's audit hooks (PEP 578), so any dataset, the project's or
Kedro's, can be killed mid-save without code in it. Object-store saves make no local file
change, so ``save:<dataset>#k`` never fires on an ``s3://`` root; node boundaries, ``saved:`` and
``end`` do.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from kedro.framework.hooks import hook_impl

FAULT_VARIABLE = "STOCK_MLOPS_FAULT"
ROOT_VARIABLE = "STOCK_MLOPS_FAULT_ROOT"
TRACE_VARIABLE = "STOCK_MLOPS_FAULT_TRACE"
RELEASE_VARIABLE = "STOCK_MLOPS_FAULT_RELEASE"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MUTATING = {"os.rename", "os.link", "os.remove", "os.rmdir", "os.mkdir", "os.truncate"}


def fault_hooks() -> tuple[Any, ...]:
    """The hooks to register: none unless the harness set ``STOCK_MLOPS_FAULT``."""
    spec = os.environ.get(FAULT_VARIABLE, "")
    return (FaultInjectionHook(spec),) if spec else ()


class FaultInjectionHook:
    """Kills or pauses a ``kedro run`` at a named point (see the module docstring)."""

    def __init__(self, spec: str) -> None:
        action, _, point = spec.partition("@")
        if action not in ("kill", "wait", "trace"):
            raise ValueError(f"{FAULT_VARIABLE}: unknown action {action!r} in {spec!r}")
        self.action, self.point = action, point
        self._root = (
            os.path.abspath(os.environ.get(ROOT_VARIABLE, ""))
            if os.environ.get(ROOT_VARIABLE)
            else ""
        )
        self._trace = os.environ.get(TRACE_VARIABLE, "")
        self._saving: str | None = None
        self._changes: list[list[str]] = []
        self._target, self._nth = "", 0
        if point.startswith("save:"):
            name, _, nth = point[len("save:") :].rpartition("#")
            self._target, self._nth = name, int(nth)
        self._lock = threading.Lock()
        sys.addaudithook(self._audit)

    # ---------------------------------------------------------------- Kedro hook points
    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._record({"node": node.name})
        self._at(f"before:{node.name}")

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        self._at("end")

    @hook_impl
    def before_dataset_saved(self, dataset_name: str) -> None:
        with self._lock:
            self._saving, self._changes = dataset_name, []

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        with self._lock:
            changes, self._saving = self._changes, None
        self._record({"save": dataset_name, "changes": changes})
        self._at(f"saved:{dataset_name}")

    # ---------------------------------------------------------------- internals
    def _at(self, point: str) -> None:
        if point != self.point:
            return
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.action == "wait":
            release = os.environ.get(RELEASE_VARIABLE, "")
            deadline = time.monotonic() + 600
            while release and not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.05)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self._saving is None or not self._is_change(event, args):
            return
        with self._lock:
            if self._saving is None:
                return
            self._changes.append([event, os.path.basename(os.fsdecode(args[0]))])
            due = self._saving == self._target and len(self._changes) == self._nth
        if due and self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)

    def _is_change(self, event: str, args: tuple[Any, ...]) -> bool:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
            )
            return writing and self._under_root(path)
        if event in _MUTATING:
            return bool(args) and self._under_root(args[0])
        return False

    def _under_root(self, path: Any) -> bool:
        if not self._root or not isinstance(path, str | bytes | os.PathLike):
            return False
        try:
            text = os.fsdecode(path)
        except (TypeError, ValueError):
            return False
        return os.path.abspath(text).startswith(self._root + os.sep)

    def _record(self, entry: dict[str, Any]) -> None:
        if not self._trace:
            return
        with open(self._trace, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
