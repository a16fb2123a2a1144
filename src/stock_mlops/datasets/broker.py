"""Broker I/O for the trading pipeline: account snapshots and order submission.

Both datasets execute on ``save`` (like Kedro's APIDataset) with a typed request built by a pure
node from ``params:trading``, so ``--params trading.broker=alpaca`` is all it takes to switch
brokers.

- ``broker_account``: save(:class:`BrokerRequest`) reads the account from the broker and stores
  the snapshot; load() returns the newest stored snapshot.
- ``broker_orders``: save(:class:`OrderSubmission`) submits the orders, skipping any client order
  id the broker already knows, and stores a snapshot of the account after them (so that
  ``broker_account`` loaded after the submission is the account as this run leaves it); load()
  returns the broker's reports of the newest submission.

Layout under ``filepath`` (``03_primary/broker``)::

    journal/<0000000001>.json   the local account's append-only journal: the source of truth
    local_account.json          the local account's state: a cache of the journal's replay
    snapshots/<stamp>.json      every account snapshot taken (both brokers)
    submissions/<stamp>.json    every submission and the broker's reports
    intents/<stamp>.json        a submission in progress (deleted once its record is written)
    .account.lock               held from reading the account to saving it (see locks.py)

The local account changes only by journal entries. A writer holds the account lock from reading
the state to saving it, appends one entry with every event of its change (``journal/<n+1>.json``,
created exclusively, so a second writer that somehow read the same state loses and retries on the
new one), then rewrites the cache. A missing, corrupt or outdated cache is rebuilt from the
journal and the rebuild is logged; a corrupt journal entry stops the run naming the file. A
submission first writes its intent; a run killed before the submission's record was written
leaves the intent behind, and the next save asks the broker which of its orders arrived.

``python -m stock_mlops.datasets.broker verify|rebuild <folder>`` checks the cache against the
journal, or rewrites it from the journal.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.brokers.base import Broker
from stock_mlops.brokers.local import JournalError, LocalPaperBroker, apply_event, replay
from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import (
    AccountSnapshot,
    BrokerError,
    BrokerRequest,
    Clock,
    OrderReport,
    OrderSubmission,
    Position,
)
from stock_mlops.core.params import LocalBrokerParams
from stock_mlops.core.vocabulary import utc_stamp
from stock_mlops.datasets._storage import (
    atomic_write_bytes,
    create_exclusive,
    filesystem,
    sweep_temporaries,
)
from stock_mlops.datasets.locks import StorageLock

logger = logging.getLogger(__name__)

LIVE_CONFIRMATION_VARIABLE = "STOCK_MLOPS_CONFIRM_LIVE_TRADING"
LIVE_CONFIRMATION_VALUE = "I understand this trades real money"
STATE_FILE = "local_account.json"
JOURNAL = "journal"
REBUILD_COMMAND = "python -m stock_mlops.datasets.broker rebuild"
REPORT_COLUMNS = [
    "client_order_id",
    "broker_order_id",
    "symbol",
    "side",
    "qty",
    "status",
    "filled_qty",
    "filled_avg_price",
    "fee",
    "submitted_at",
    "filled_at",
    "message",
]
# A writer that finds its journal entry number taken re-reads the account this many times.
_COMMIT_ATTEMPTS = 5
_ENTRY_NAME = re.compile(r"^(\d{10})\.json$")


class BrokerStateError(DatasetError):
    """The local account cannot be derived; the message names the file and what to do."""


class _Conflict(Exception):
    """Another writer appended the journal entry this one was about to write."""


# ---------------------------------------------------------------------------------- journal
class AccountJournal:
    """The local account's journal: immutable entries ``journal/<n>.json``, n = 1, 2, ...

    Args:
        fs: The filesystem.
        root: The broker folder (a path of ``fs``).
        label: How to name the folder in messages (the URL the user configured).
    """

    def __init__(self, fs, root: str, label: str) -> None:
        self._fs = fs
        self._root = root
        self._label = label

    @property
    def folder(self) -> str:
        return f"{self._root}/{JOURNAL}"

    def entry_path(self, seq: int) -> str:
        return f"{self.folder}/{seq:010d}.json"

    def sequence(self) -> list[int]:
        """The entry numbers present, checked to run 1..n without a gap."""
        if not self._fs.isdir(self.folder):
            return []
        self._fs.invalidate_cache(self.folder)
        numbers = sorted(
            int(match.group(1))
            for name in (PurePosixPath(p).name for p in self._fs.ls(self.folder, detail=False))
            if (match := _ENTRY_NAME.match(name))
        )
        expected = list(range(1, len(numbers) + 1))
        if numbers != expected:
            missing = sorted(set(range(1, (numbers[-1] if numbers else 0) + 1)) - set(numbers))
            raise BrokerStateError(
                f"the journal of the local broker account in '{self._label}/{JOURNAL}' has gaps: "
                f"entries {missing[:5]} are missing; restore them from a backup (the account "
                "cannot be derived without every entry)"
            )
        return numbers

    def read(self, seq: int) -> dict[str, Any]:
        """One entry, checked; a corrupt entry is an error naming its file."""
        path = self.entry_path(seq)
        where = f"{self._label}/{JOURNAL}/{seq:010d}.json"
        try:
            entry = json.loads(self._fs.cat_file(path), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BrokerStateError(
                f"journal entry {where} of the local broker account is corrupt ({exc}); the "
                "account cannot be derived: restore this file from a backup"
            ) from None
        if not isinstance(entry, dict) or entry.get("seq") != seq or "events" not in entry:
            raise BrokerStateError(
                f"journal entry {where} is not a journal entry of entry number {seq}; restore "
                "it from a backup"
            )
        return entry

    def events(self, after: int = 0, until: int | None = None) -> list[dict[str, Any]]:
        """The events of entries ``after + 1`` to ``until`` (default: the newest), in order."""
        last = until if until is not None else (self.sequence() or [0])[-1]
        return [event for seq in range(after + 1, last + 1) for event in self.read(seq)["events"]]

    def sweep_orphans(self) -> None:
        """Removes temporary files of entries whose save was killed (between writing the
        complete file and removing it once linked). A run that finds its day's events already
        committed writes no entry, and would otherwise never sweep them."""
        sweep_temporaries(self._fs, self.entry_path(1))

    def append(self, seq: int, events: list[dict[str, Any]], writer: str) -> None:
        """Writes entry ``seq``; raises :class:`_Conflict` when it exists already."""
        entry = {
            "seq": seq,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "writer": writer,
            "events": events,
        }
        if not create_exclusive(self._fs, self.entry_path(seq), _dumps(entry)):
            raise _Conflict(seq)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, indent=1, default=str, allow_nan=False).encode()
    except ValueError as exc:
        raise DatasetError(f"refusing to store a non-finite number in the broker state: {exc}")


def _check_state(state: Any) -> str:
    """Why ``state`` is not a usable account ('' when it is)."""
    if not isinstance(state, dict):
        return "it is not a JSON object"
    missing = [
        k
        for k in ("cash", "positions", "orders", "pending", "fills", "last_prices")
        if k not in state
    ]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if not isinstance(state["cash"], int | float) or not math.isfinite(state["cash"]):
        return f"its cash {state['cash']!r} is not a finite number"
    for symbol, held in state["positions"].items():
        qty = held.get("qty") if isinstance(held, dict) else None
        if not isinstance(qty, int | float) or not math.isfinite(qty):
            return f"its {symbol} position has quantity {qty!r}"
    return ""


# ---------------------------------------------------------------------------------- datasets
class _BrokerDataset(AbstractDataset):
    """What both broker datasets share: where state, snapshots and reports live, and how to
    connect to the broker a request names."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        lock_wait_seconds: float = 600.0,
    ) -> None:
        self._filepath = str(filepath).rstrip("/")
        self._credentials, self._fs_args = credentials, fs_args
        self._fs, self._protocol, self._root = filesystem(filepath, credentials, fs_args)
        self._journal = AccountJournal(self._fs, self._root, self._filepath)
        self._lock_wait = lock_wait_seconds
        self.metadata = metadata

    # ------------------------------------------------------------------------ locking
    def _lock(self, purpose: str) -> StorageLock:
        return StorageLock(
            f"{self._filepath}/.account.lock",
            purpose=purpose,
            wait_seconds=self._lock_wait,
            lease_seconds=60.0,
            credentials=self._credentials,
            fs_args=self._fs_args,
        )

    def _transact(
        self, request: BrokerRequest, purpose: str, action: Callable[[Broker], Any]
    ) -> Any:
        """Runs ``action`` on the broker under the account lock; the local account's changes are
        committed as one journal entry (retried on a fresh state if another writer got there
        first)."""
        with self._lock(purpose) as lock:
            if request.broker == "alpaca":
                return action(_alpaca(request))
            if request.broker != "local":
                raise DatasetError(
                    f"unknown broker '{request.broker}' (expected 'local' or 'alpaca')"
                )
            if self._protocol == "file":  # on S3 an entry is one conditional PUT, no file
                self._journal.sweep_orphans()
            for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                broker, seq, cache_stale = self._load_local(request.local)
                _advance(broker, request.market_bars, request.as_of)
                result = action(broker)
                lock.check()
                try:
                    seq = self._commit(broker, seq, purpose)
                except _Conflict:
                    logger.warning(
                        "journal entry %d of %s was written by another writer meanwhile; "
                        "retrying on the new state (attempt %d of %d)",
                        seq + 1,
                        self._filepath,
                        attempt,
                        _COMMIT_ATTEMPTS,
                    )
                    continue
                if broker.events or cache_stale:
                    self._write_cache(broker.state, seq)
                return result
        raise DatasetError(
            f"could not commit to the journal of '{self._filepath}' after {_COMMIT_ATTEMPTS} "
            "attempts: other writers kept changing the account"
        )

    # ------------------------------------------------------------------------ local state
    def _load_local(self, settings: LocalBrokerParams) -> tuple[LocalPaperBroker, int, bool]:
        """The local account from its journal: the broker, the newest entry number, and whether
        the cache must be rewritten."""
        options = {
            "fill_at": settings.fill_at,
            "commission_bps": settings.commission_bps,
            "slippage_bps": settings.slippage_bps,
        }
        sequence = self._journal.sequence()
        cache, problem = self._read_cache()
        if not sequence:
            if problem == "missing":
                return LocalPaperBroker.open_account(settings.initial_cash, **options), 0, True
            if problem:
                raise BrokerStateError(
                    f"the local broker account file {self._state_url} is corrupt ({problem}) and "
                    f"no journal exists to rebuild it from: restore it from a backup, or move it "
                    "away to start a fresh account"
                )
            # An account written before the journal existed: the journal starts from it.
            logger.warning(
                "the local broker account %s has no journal yet: starting one from it",
                self._state_url,
            )
            broker = LocalPaperBroker(replay([]), journal=True, **options)
            broker._apply({"kind": "restored", "state": _without_seq(cache)})
            return broker, 0, True
        newest = sequence[-1]
        cached_seq = cache.get("journal_seq") if cache else None
        if not problem and isinstance(cached_seq, int) and cached_seq == newest:
            return LocalPaperBroker(_without_seq(cache), journal=True, **options), newest, False
        if not problem and isinstance(cached_seq, int) and 0 < cached_seq < newest:
            state = _without_seq(cache)
            for event in self._journal.events(after=cached_seq, until=newest):
                apply_event(state, event)
            logger.info(
                "the local account cache %s was at journal entry %d of %d: brought up to date",
                self._state_url,
                cached_seq,
                newest,
            )
            return LocalPaperBroker(state, journal=True, **options), newest, True
        if not problem and isinstance(cached_seq, int) and cached_seq > newest:
            raise BrokerStateError(
                f"the local broker account file {self._state_url} is at journal entry "
                f"{cached_seq} but the journal in {self._filepath}/{JOURNAL} ends at {newest}: "
                "journal entries are missing; restore them from a backup, or rebuild the file "
                f"from the journal as it is with `{REBUILD_COMMAND} {self._filepath}`"
            )
        reason = problem or "it names no journal entry"
        state = self._replay(newest)
        logger.warning(
            "REBUILT the local broker account from its journal (%d entries) because the file "
            "%s was unusable: %s; cash %.2f, %d positions, %d orders",
            newest,
            self._state_url,
            reason,
            state["cash"],
            len(state["positions"]),
            len(state["orders"]),
        )
        return LocalPaperBroker(state, journal=True, **options), newest, True

    def _replay(self, until: int) -> dict[str, Any]:
        try:
            state = replay(self._journal.events(until=until))
        except (JournalError, KeyError, TypeError) as exc:
            raise BrokerStateError(
                f"the journal in {self._filepath}/{JOURNAL} cannot be replayed ({exc}); restore "
                "its entries from a backup"
            ) from None
        problem = _check_state(state)
        if problem:
            raise BrokerStateError(
                f"replaying the journal in {self._filepath}/{JOURNAL} gives an unusable account "
                f"({problem}); restore its entries from a backup"
            )
        return state

    @property
    def _state_url(self) -> str:
        return f"{self._filepath}/{STATE_FILE}"

    def _read_cache(self) -> tuple[dict[str, Any] | None, str]:
        """The cached state and '' , or None and why it cannot be used ('missing' when absent)."""
        path = f"{self._root}/{STATE_FILE}"
        try:
            raw = self._fs.cat_file(path)
        except FileNotFoundError:
            return None, "missing"
        try:
            state = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except UnicodeDecodeError:
            return None, "it is not UTF-8 text"
        except ValueError as exc:
            return None, f"not valid JSON: {exc}"
        problem = _check_state(state)
        return (None, problem) if problem else (state, "")

    def _commit(self, broker: LocalPaperBroker, seq: int, purpose: str) -> int:
        if not broker.events:
            return seq
        self._journal.append(seq + 1, broker.events, purpose)
        return seq + 1

    def _write_cache(self, state: dict[str, Any], seq: int) -> None:
        atomic_write_bytes(
            self._fs, f"{self._root}/{STATE_FILE}", _dumps({**state, "journal_seq": seq})
        )

    # ------------------------------------------------------------------------ records
    def _write_record(self, kind: str, payload: dict[str, Any], stamp: str | None = None) -> str:
        stamp = stamp or utc_stamp()
        atomic_write_bytes(self._fs, f"{self._root}/{kind}/{stamp}.json", _dumps(payload))
        return stamp

    def _records(self, kind: str) -> list[str]:
        folder = f"{self._root}/{kind}"
        if not self._fs.isdir(folder):
            return []
        self._fs.invalidate_cache(folder)
        return sorted(
            p
            for p in self._fs.ls(folder, detail=False)
            if p.endswith(".json") and not PurePosixPath(p).name.startswith(".")
        )

    def _newest_record(self, kind: str) -> dict[str, Any]:
        paths = self._records(kind)
        if not paths:
            raise DatasetError(f"no {kind} stored under '{self._filepath}' yet")
        return json.loads(self._fs.cat_file(paths[-1]))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


def _without_seq(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "journal_seq"}


def _advance(broker: LocalPaperBroker, bars: pd.DataFrame, as_of: dt.date) -> None:
    """Replays market sessions the simulated account has not seen, up to ``as_of``."""
    bars = bars[bars[C.DATE] <= pd.Timestamp(as_of)]
    if bars.empty:
        raise DatasetError(f"no market bars up to {as_of} to run the local broker on")
    seen = broker.state["as_of"]
    if seen is not None:
        bars = bars[bars[C.DATE] > pd.Timestamp(seen)]
    else:  # a new account starts at the newest session, with nothing pending
        bars = bars[bars[C.DATE] == bars[C.DATE].max()]
    for date, day in bars.groupby(C.DATE, sort=True):
        broker.open_session(date, dict(zip(day[C.SYMBOL], day[C.OPEN], strict=True)))
        broker.close_session(date, dict(zip(day[C.SYMBOL], day[C.CLOSE], strict=True)))


def _alpaca(request: BrokerRequest) -> Broker:
    from stock_mlops.brokers.alpaca import AlpacaBroker  # noqa: PLC0415 - alpaca-py on demand

    if request.live and os.environ.get(LIVE_CONFIRMATION_VARIABLE) != LIVE_CONFIRMATION_VALUE:
        raise DatasetError(
            "trading.live is true but live trading is not confirmed: set "
            f"{LIVE_CONFIRMATION_VARIABLE}='{LIVE_CONFIRMATION_VALUE}' to trade real money"
        )
    try:
        return AlpacaBroker.from_environment(
            paper=not request.live,
            url_override=request.alpaca.url_override,
            timeout_seconds=request.alpaca.timeout_seconds,
        )
    except BrokerError as exc:
        raise DatasetError(str(exc)) from None


def snapshot_to_dict(snapshot: AccountSnapshot) -> dict[str, Any]:
    """The snapshot as a JSON-ready dict (stored under ``snapshots/``)."""
    return {
        "broker": snapshot.broker,
        "cash": snapshot.cash,
        "buying_power": snapshot.buying_power,
        "as_of": None if snapshot.as_of is None else snapshot.as_of.isoformat(),
        "positions": {s: vars(p) for s, p in snapshot.positions.items()},
        "clock": {
            "timestamp": snapshot.clock.timestamp.isoformat(),
            "is_open": snapshot.clock.is_open,
            "execution_session": snapshot.clock.execution_session.isoformat(),
        },
        "known_client_order_ids": sorted(snapshot.known_client_order_ids),
        "orders": [r.to_dict() for r in snapshot.orders],
    }


def snapshot_from_dict(raw: dict[str, Any]) -> AccountSnapshot:
    """Reads a snapshot stored by :func:`snapshot_to_dict` (older records lack the newer keys)."""
    clock = raw["clock"]
    return AccountSnapshot(
        broker=raw["broker"],
        cash=float(raw["cash"]),
        positions={s: Position(**p) for s, p in raw["positions"].items()},
        clock=Clock(
            timestamp=dt.datetime.fromisoformat(clock["timestamp"]),
            is_open=bool(clock["is_open"]),
            execution_session=dt.date.fromisoformat(clock["execution_session"]),
        ),
        known_client_order_ids=frozenset(raw["known_client_order_ids"]),
        buying_power=raw.get("buying_power"),
        as_of=dt.date.fromisoformat(raw["as_of"]) if raw.get("as_of") else None,
        orders=tuple(OrderReport(**r) for r in raw.get("orders", [])),
    )


class BrokerAccountDataset(_BrokerDataset):
    """Saves a snapshot request by asking the broker; loads the newest snapshot.

    Example catalog entry::

        broker_account:
          type: stock_mlops.datasets.BrokerAccountDataset
          filepath: ${_root}/03_primary/broker
    """

    def save(self, data: BrokerRequest) -> None:
        def take(broker: Broker) -> AccountSnapshot:
            try:
                return broker.account()
            except BrokerError as exc:
                raise DatasetError(f"reading the {data.broker} account failed: {exc}") from None

        snapshot = self._transact(data, f"account snapshot as of {data.as_of}", take)
        snapshot = dataclasses.replace(snapshot, as_of=data.as_of)
        self._write_record("snapshots", snapshot_to_dict(snapshot))
        logger.info(
            "%s account: cash %.2f, equity %.2f, %d positions",
            snapshot.broker,
            snapshot.cash,
            snapshot.equity,
            len(snapshot.positions),
        )

    def load(self) -> AccountSnapshot:
        return snapshot_from_dict(self._newest_record("snapshots"))


class BrokerOrdersDataset(_BrokerDataset):
    """Submits orders idempotently; loads the broker's reports of the newest submission.

    Example catalog entry::

        broker_orders:
          type: stock_mlops.datasets.BrokerOrdersDataset
          filepath: ${_root}/03_primary/broker
    """

    def save(self, data: OrderSubmission) -> None:
        request, orders = data.request, data.orders
        earlier_attempts: list[str] = []

        def submit(broker: Broker) -> list[Any]:
            # A retry after a journal conflict starts over: its earlier intent is void.
            for stamp in earlier_attempts:
                self._delete_intent(stamp)
            self._recover_intents(broker)
            intent = self._write_record(
                "intents",
                {"request": request.describe(), "orders": [vars(o) for o in orders]},
            )
            earlier_attempts.append(intent)
            reports, placed_now = [], []
            try:
                for order in orders:
                    existing = broker.get_order_by_client_id(order.client_order_id)
                    if existing is not None:
                        logger.info(
                            "%s already at the broker: not resubmitted", order.client_order_id
                        )
                        reports.append(existing)
                        continue
                    report = broker.submit_order(order)
                    reports.append(report)
                    placed_now.append(report)
            except BrokerError as exc:
                # Nothing is committed for the local broker (its journal entry is written only on
                # success); a remote broker is asked to cancel what this submission placed.
                if placed_now and hasattr(broker, "cancel_orders"):
                    broker.cancel_orders([r.broker_order_id for r in placed_now])
                self._delete_intent(intent)
                raise DatasetError(
                    f"order submission to {request.broker} failed after {len(reports)} of "
                    f"{len(orders)} orders: {exc}"
                ) from None
            try:
                after = broker.account()
            except BrokerError as exc:
                logger.warning("reading the account after the submission failed: %s", exc)
                after = None
            return [intent, reports, after]

        intent, reports, after = self._transact(
            request, f"order submission as of {request.as_of}", submit
        )
        self._write_record(
            "submissions",
            {
                "request": request.describe(),
                "intent": intent,
                "reports": [r.to_dict() for r in reports],
            },
        )
        self._delete_intent(intent)
        if after is not None:
            # The account after this run's orders: what broker_account loads from now on.
            self._write_record(
                "snapshots",
                {
                    **snapshot_to_dict(dataclasses.replace(after, as_of=request.as_of)),
                    "taken": "after submission",
                },
            )
        logger.info("%d orders sent to %s", len(reports), request.broker)

    def _recover_intents(self, broker: Broker) -> None:
        """Settles submissions a killed run left without a record: asks the broker which of
        their orders it holds, and records that."""
        for path in self._records("intents"):
            stamp = PurePosixPath(path).stem
            intent = json.loads(self._fs.cat_file(path))
            found = [
                report
                for order in intent.get("orders", [])
                if (report := broker.get_order_by_client_id(order["client_order_id"])) is not None
            ]
            arrived = [r.client_order_id for r in found]
            lost = [
                o["client_order_id"]
                for o in intent.get("orders", [])
                if o["client_order_id"] not in arrived
            ]
            logger.warning(
                "an interrupted submission (%s) was found: at the broker %s; never sent %s",
                stamp,
                arrived or "none",
                lost or "none",
            )
            self._write_record(
                "submissions",
                {
                    "request": intent.get("request"),
                    "recovered_intent": stamp,
                    "never_sent": lost,
                    "reports": [r.to_dict() for r in found],
                },
            )
            self._delete_intent(stamp)

    def _delete_intent(self, stamp: str) -> None:
        path = f"{self._root}/intents/{stamp}.json"
        if self._fs.exists(path):
            self._fs.rm(path)

    def load(self) -> pd.DataFrame:
        record = self._newest_record("submissions")
        return pd.DataFrame(record["reports"], columns=REPORT_COLUMNS)


# ---------------------------------------------------------------------------------- commands
def verify_account(folder: str) -> str:
    """Compares the local account file with the replay of its journal; '' when they agree."""
    dataset = BrokerAccountDataset(filepath=folder)
    sequence = dataset._journal.sequence()
    if not sequence:
        return f"no journal under {folder}"
    cache, problem = dataset._read_cache()
    if problem:
        return f"{dataset._state_url}: {problem}"
    replayed = dataset._replay(sequence[-1])
    if cache.get("journal_seq") != sequence[-1]:
        return f"{dataset._state_url} is at entry {cache.get('journal_seq')} of {sequence[-1]}"
    if _without_seq(cache) != replayed:
        return f"{dataset._state_url} differs from the replay of {len(sequence)} journal entries"
    return ""


def rebuild_account(folder: str) -> dict[str, Any]:
    """Rewrites the local account file from its journal; returns the state."""
    dataset = BrokerAccountDataset(filepath=folder)
    with dataset._lock("rebuild from the journal"):
        sequence = dataset._journal.sequence()
        if not sequence:
            raise BrokerStateError(f"no journal under {folder}: nothing to rebuild from")
        state = dataset._replay(sequence[-1])
        dataset._write_cache(state, sequence[-1])
    return state


def main(argv: list[str] | None = None) -> int:
    """``verify`` or ``rebuild`` a local broker folder (``<storage_root>/03_primary/broker``)."""
    parser = argparse.ArgumentParser(prog="python -m stock_mlops.datasets.broker")
    parser.add_argument("action", choices=["verify", "rebuild"])
    parser.add_argument("folder", help="the broker folder, e.g. data/03_primary/broker")
    args = parser.parse_args(argv)
    try:
        if args.action == "verify":
            problem = verify_account(args.folder)
            sys.stdout.write(f"{problem or 'the account file agrees with its journal'}\n")
            return 1 if problem else 0
        state = rebuild_account(args.folder)
    except DatasetError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(
        f"rebuilt {args.folder}/{STATE_FILE} from its journal: cash {state['cash']:.2f}, "
        f"{len(state['positions'])} positions, {len(state['orders'])} orders\n"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
