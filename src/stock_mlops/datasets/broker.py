"""Broker I/O for the trading pipeline: account snapshots and order submission.

Both datasets execute on ``save`` (like Kedro's APIDataset) with a typed request built by a pure
node from ``params:trading``, so ``--params trading.broker=alpaca`` is all it takes to switch
brokers.

- ``broker_account``: save(:class:`BrokerRequest`) reads the account from the broker and stores
  the snapshot; load() returns the newest stored snapshot.
- ``broker_orders``: save(:class:`OrderSubmission`) submits the orders, skipping any client order
  id the broker already knows; load() returns the broker's reports of the newest submission.

The local broker's state (cash, positions, orders, fills) lives in ``<filepath>/local_account.json``
and is replaced atomically only after every order of a submission was processed. It advances
through the market bars the request carries (the ``prices`` dataset up to ``as_of``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.brokers.base import Broker
from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core import columns as C
from stock_mlops.core.broker_types import (
    AccountSnapshot,
    BrokerError,
    BrokerRequest,
    Clock,
    OrderSubmission,
    Position,
)
from stock_mlops.core.vocabulary import utc_stamp
from stock_mlops.datasets._storage import atomic_write_bytes, filesystem

logger = logging.getLogger(__name__)

LIVE_CONFIRMATION_VARIABLE = "STOCK_MLOPS_CONFIRM_LIVE_TRADING"
LIVE_CONFIRMATION_VALUE = "I understand this trades real money"
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
    ) -> None:
        self._filepath = filepath
        self._fs, self._protocol, self._root = filesystem(filepath, credentials, fs_args)
        self.metadata = metadata

    # ------------------------------------------------------------------------ connect
    def _connect(self, request: BrokerRequest) -> Broker:
        if request.broker == "local":
            return self._local(request)
        if request.broker == "alpaca":
            return _alpaca(request)
        raise DatasetError(f"unknown broker '{request.broker}' (expected 'local' or 'alpaca')")

    def _local(self, request: BrokerRequest) -> LocalPaperBroker:
        settings = request.local
        path = f"{self._root}/local_account.json"
        state = (
            json.loads(self._fs.cat_file(path))
            if self._fs.exists(path)
            else LocalPaperBroker.new_state(settings.initial_cash)
        )
        broker = LocalPaperBroker(
            state,
            fill_at=settings.fill_at,
            commission_bps=settings.commission_bps,
            slippage_bps=settings.slippage_bps,
        )
        _advance(broker, request.market_bars, request.as_of)
        return broker

    def _save_local_state(self, broker: Broker) -> None:
        if isinstance(broker, LocalPaperBroker):
            payload = json.dumps(broker.state, indent=1, default=str).encode()
            atomic_write_bytes(self._fs, f"{self._root}/local_account.json", payload)

    # ------------------------------------------------------------------------ records
    def _write_record(self, kind: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, indent=1, default=str).encode()
        atomic_write_bytes(self._fs, f"{self._root}/{kind}/{utc_stamp()}.json", data)

    def _newest_record(self, kind: str) -> dict[str, Any]:
        folder = f"{self._root}/{kind}"
        paths = sorted(self._fs.ls(folder, detail=False)) if self._fs.isdir(folder) else []
        paths = [p for p in paths if p.endswith(".json")]
        if not paths:
            raise DatasetError(f"no {kind} stored under '{self._filepath}' yet")
        return json.loads(self._fs.cat_file(paths[-1]))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


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
    return {
        "broker": snapshot.broker,
        "cash": snapshot.cash,
        "positions": {s: vars(p) for s, p in snapshot.positions.items()},
        "clock": {
            "timestamp": snapshot.clock.timestamp.isoformat(),
            "is_open": snapshot.clock.is_open,
            "execution_session": snapshot.clock.execution_session.isoformat(),
        },
        "known_client_order_ids": sorted(snapshot.known_client_order_ids),
    }


def snapshot_from_dict(raw: dict[str, Any]) -> AccountSnapshot:
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
    )


class BrokerAccountDataset(_BrokerDataset):
    """Saves a snapshot request by asking the broker; loads the newest snapshot.

    Example catalog entry::

        broker_account:
          type: stock_mlops.datasets.BrokerAccountDataset
          filepath: ${_root}/03_primary/broker
    """

    def save(self, data: BrokerRequest) -> None:
        broker = self._connect(data)
        try:
            snapshot = broker.account()
        except BrokerError as exc:
            raise DatasetError(f"reading the {data.broker} account failed: {exc}") from None
        self._save_local_state(broker)
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
        broker = self._connect(request)
        reports, placed_now = [], []
        try:
            for order in orders:
                existing = broker.get_order_by_client_id(order.client_order_id)
                if existing is not None:
                    logger.info("%s already at the broker: not resubmitted", order.client_order_id)
                    reports.append(existing)
                    continue
                report = broker.submit_order(order)
                reports.append(report)
                placed_now.append(report)
        except BrokerError as exc:
            # Nothing is persisted for the local broker (its state is replaced only on success);
            # a remote broker is asked to cancel what this submission already placed.
            if placed_now and hasattr(broker, "cancel_orders"):
                broker.cancel_orders([r.broker_order_id for r in placed_now])
            raise DatasetError(
                f"order submission to {request.broker} failed after {len(reports)} of "
                f"{len(orders)} orders: {exc}"
            ) from None
        self._save_local_state(broker)
        self._write_record(
            "submissions",
            {"request": request.describe(), "reports": [r.to_dict() for r in reports]},
        )
        logger.info("%d orders sent to %s", len(reports), request.broker)

    def load(self) -> pd.DataFrame:
        record = self._newest_record("submissions")
        return pd.DataFrame(record["reports"], columns=REPORT_COLUMNS)
