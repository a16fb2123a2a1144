"""Where the independent per-model work runs: in this process, or as tasks on a Dask cluster.

The training nodes describe their work as :class:`Task` s (one symbol's model, one walk-forward
fold of one symbol, one symbol's predictions) and hand them to an executor; the executor returns
each task's result under its key. Task functions are plain module-level functions of their
arguments (seeds included), so where a task runs does not change what it returns.

``training.executor: dask`` uses, in this order: a Dask client that is already the default in
this process (the one :class:`~stock_mlops.hooks.DaskClusterHook` opens for a whole run, or a
user's own), else ``training.dask.scheduler_address`` / Dask's ``scheduler-address`` setting
(``DASK_SCHEDULER_ADDRESS``), else a ``LocalCluster`` of worker processes on 127.0.0.1 that lives
as long as the executor. Workers run one task at a time with ``torch_threads`` torch threads, so
two workers on two cores do not fight over them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from stock_mlops.core.params import DaskParams, TrainingParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One independent unit of work: ``function(*args)``, known by ``key`` (e.g. the symbol)."""

    key: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


class TaskFailed(RuntimeError):
    """A task failed or lost its worker; the message names the task (the symbol) and why."""


class Executor(Protocol):
    """Runs tasks and returns their results by key (in the order the tasks were given)."""

    def run(self, tasks: list[Task], what: str) -> dict[str, Any]:
        """Runs every task; raises :class:`TaskFailed` naming the first one that fails."""


def training_progress(done: int, total: int, elapsed: float) -> str:
    """``model k of N, elapsed m:ss, about m:ss left`` (the estimate: the mean time so far)."""
    left = elapsed / done * (total - done)
    return f"model {done} of {total}, elapsed {_clock(elapsed)}, about {_clock(left)} left"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


class SerialExecutor:
    """Every task in this process, one after the other (the default)."""

    def run(self, tasks: list[Task], what: str) -> dict[str, Any]:
        results: dict[str, Any] = {}
        started = time.perf_counter()
        for number, task in enumerate(tasks, start=1):
            try:
                results[task.key] = task.function(*task.args)
            except Exception as exc:
                raise TaskFailed(f"{what} {task.key} failed: {exc}") from exc
            _log_done(what, task.key, number, len(tasks), started)
        return results


class DaskExecutor:
    """Every task on a Dask cluster, through ``client``; the first failure cancels the rest."""

    def __init__(self, client: Any, torch_threads: int) -> None:
        self._client = client
        self._torch_threads = torch_threads

    def run(self, tasks: list[Task], what: str) -> dict[str, Any]:
        from distributed import as_completed  # noqa: PLC0415 - only with the dask executor

        run_id = uuid.uuid4().hex[:8]
        futures = {
            self._client.submit(
                run_task,
                task.function,
                task.args,
                self._torch_threads,
                key=f"{what.replace(' ', '_')}-{task.key}-{run_id}",
                pure=False,
            ): task.key
            for task in tasks
        }
        results: dict[str, Any] = {}
        started = time.perf_counter()
        try:
            for number, future in enumerate(as_completed(futures), start=1):
                key = futures[future]
                try:
                    results[key] = future.result()
                except Exception as exc:
                    raise TaskFailed(_failure_message(what, key, exc)) from exc
                _log_done(what, key, number, len(tasks), started)
        finally:
            # After a failure nothing else is worth computing: the node fails, nothing is saved.
            self._client.cancel([f for f in futures if not f.done()])
        return {task.key: results[task.key] for task in tasks}


def run_task(function: Callable[..., Any], args: tuple[Any, ...], torch_threads: int) -> Any:
    """A task as a Dask worker runs it: bounded torch threads, then the function."""
    import torch  # noqa: PLC0415 - the worker imports torch once, for its first task

    if torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    return function(*args)


def _failure_message(what: str, key: str, exc: BaseException) -> str:
    from distributed import KilledWorker  # noqa: PLC0415

    if isinstance(exc, KilledWorker):
        return (
            f"{what} {key} failed: the Dask worker running it died (the task was tried on "
            f"{_tries(exc)} worker(s)); see the worker's log, most often it ran out of memory "
            "(raise training.dask.memory_limit or use fewer workers)"
        )
    return f"{what} {key} failed on a Dask worker: {type(exc).__name__}: {exc}"


def _tries(exc: Any) -> str:
    allowed = getattr(exc, "allowed_failures", None)
    return "several" if allowed is None else str(allowed + 1)


def _log_done(what: str, key: str, number: int, total: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    logger.info("%s %s done; %s", what, key, training_progress(number, total, elapsed))


# ------------------------------------------------------------------------------- the cluster
@contextlib.contextmanager
def open_executor(params: TrainingParams) -> Iterator[Executor]:
    """The executor ``params.executor`` names, with its cluster for as long as it is open."""
    if params.executor == "serial":
        yield SerialExecutor()
        return
    with dask_client(params.dask) as client:
        yield DaskExecutor(client, params.dask.torch_threads)


class RunCluster:
    """The Dask client of one run: opened when a node first needs it (a daily run that does
    not retrain starts no cluster), closed when the run ends."""

    def __init__(self, params: DaskParams) -> None:
        self.params = params
        self._stack: contextlib.ExitStack | None = None
        self._client: Any = None

    def client(self) -> Any:
        """The run's client, started on the first call."""
        if self._client is None:
            stack = contextlib.ExitStack()
            self._client = stack.enter_context(start_client(self.params))
            self._stack = stack
        return self._client

    def close(self) -> None:
        """Closes the client and, for a LocalCluster, its workers."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            stack.close()


_run_cluster: RunCluster | None = None


def open_run_cluster(params: DaskParams) -> None:
    """Makes one cluster serve every node of the run that follows (see DaskClusterHook)."""
    global _run_cluster  # noqa: PLW0603 - one run per process at a time, like Kedro's session
    close_run_cluster()
    _run_cluster = RunCluster(params)


def close_run_cluster() -> None:
    """Ends the run's cluster, if one was started."""
    global _run_cluster  # noqa: PLW0603
    if _run_cluster is not None:
        cluster, _run_cluster = _run_cluster, None
        cluster.close()


@contextlib.contextmanager
def dask_client(params: DaskParams) -> Iterator[Any]:
    """The client to use: the run's (see :func:`open_run_cluster`), else the process's default
    one if it fits ``params``, else a new one (connected to the scheduler address, or to a
    LocalCluster) closed on exit."""
    if _run_cluster is not None and _run_cluster.params == params:
        yield _run_cluster.client()
        return
    current = _default_client()
    address = scheduler_address(params)
    if current is not None and (address is None or current.scheduler.address == address):
        yield current
        return
    with start_client(params) as client:
        yield client


def scheduler_address(params: DaskParams) -> str | None:
    """``training.dask.scheduler_address``, else Dask's ``scheduler-address`` setting."""
    if params.scheduler_address:
        return params.scheduler_address
    import dask  # noqa: PLC0415

    return dask.config.get("scheduler-address", None) or None


@contextlib.contextmanager
def start_client(params: DaskParams) -> Iterator[Any]:
    """A client of the remote scheduler, or of a new LocalCluster on 127.0.0.1 (both closed on
    exit; the cluster's workers with it)."""
    import dask  # noqa: PLC0415
    from distributed import Client, LocalCluster  # noqa: PLC0415

    address = scheduler_address(params)
    if address is not None:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise TaskFailed(
                f"cannot reach the Dask scheduler at {address} (training.dask.scheduler_address "
                f"or DASK_SCHEDULER_ADDRESS): {exc}"
            ) from None
        logger.info("training tasks go to the Dask scheduler at %s", address)
        with client:
            yield client
        return
    workers = params.n_workers or max(1, (os.cpu_count() or 1) // params.torch_threads)
    with dask.config.set({"distributed.scheduler.allowed-failures": params.allowed_failures}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=params.memory_limit,
            silence_logs=logging.WARNING,
        )
    logger.info(
        "training tasks go to a LocalCluster of %d worker(s) at %s",
        workers,
        cluster.scheduler_address,
    )
    with cluster, Client(cluster) as client:
        yield client


def _default_client() -> Any | None:
    try:
        from distributed import default_client  # noqa: PLC0415
    except ImportError:  # pragma: no cover - distributed is a pinned dependency
        return None
    try:
        return default_client()
    except ValueError:  # no client in this process
        return None
