"""Broker I/O for the trading pipeline: account snapshots and order submission.

Both datasets execute on ``save`` (like Kedro's APIDataset) with a request built by a pure node
from ``params:trading``, so ``--params trading.broker=alpaca`` is all it takes to switch brokers.

- ``broker_account``: save(request) reads the account from the broker and stores the snapshot;
  load() returns the newest stored snapshot.
- ``broker_orders``: save(submission) submits the approved orders, skipping any client order id
  the broker already knows; load() returns the broker's reports of the newest submission.

The local broker's state (cash, positions, orders, fills) lives in ``<filepath>/local_account.json``
and is replaced atomically only after every order of a submission was processed.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from stock_mlops.brokers.base import (
    AccountSnapshot,
    BrokerError,
    Clock,
    OrderRequest,
    Position,
)
from stock_mlops.brokers.local import LocalPaperBroker
from stock_mlops.core import columns as C
from stock_mlops.datasets._storage import atomic_write_bytes, filesystem

logger = logging.getLogger(__name__)

LIVE_CONFIRMATION_VARIABLE = "STOCK_MLOPS_CONFIRM_LIVE_TRADING"
LIVE_CONFIRMATION_VALUE = "I understand this trades real money"
_STAMP = "%Y%m%dT%H%M%S%fZ"


def _now_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime(_STAMP)


class _BrokerStore:
    """Shared by both datasets: where state, snapshots and reports live, and how to connect."""

    def __init__(
        self,
        filepath: str,
        market_data: str | None,
        credentials: dict[str, Any] | None,
        fs_args: dict[str, Any] | None,
    ) -> None:
        self.filepath = filepath
        self.fs, self.protocol, self.root = filesystem(filepath, credentials, fs_args)
        self.market_data = market_data
        self._market_fs = filesystem(market_data, credentials, fs_args) if market_data else None

    # ------------------------------------------------------------------------ connect
    def connect(self, request: dict[str, Any]) -> Any:
        kind = request["broker"]
        if kind == "local":
            return self._local(request)
        if kind == "alpaca":
            return _alpaca(request)
        raise DatasetError(f"unknown broker '{kind}' (expected 'local' or 'alpaca')")

    def _local(self, request: dict[str, Any]) -> LocalPaperBroker:
        settings = request["local"]
        path = f"{self.root}/local_account.json"
        state = (
            json.loads(self.fs.cat_file(path))
            if self.fs.exists(path)
            else LocalPaperBroker.new_state(settings["initial_cash"])
        )
        broker = LocalPaperBroker(
            state,
            fill_at=settings["fill_at"],
            commission_bps=settings["commission_bps"],
            slippage_bps=settings["slippage_bps"],
        )
        self._advance(broker, request.get("as_of"))
        return broker

    def _advance(self, broker: LocalPaperBroker, as_of: str | None) -> None:
        """Replays market sessions the simulated account has not seen, up to ``as_of``."""
        bars = self._market_bars()
        if as_of is not None:
            bars = bars[bars[C.DATE] <= pd.Timestamp(as_of)]
        if bars.empty:
            raise DatasetError(f"no market data in '{self.market_data}' up to {as_of}")
        seen = broker.state["as_of"]
        if seen is not None:
            bars = bars[bars[C.DATE] > pd.Timestamp(seen)]
        else:  # a new account starts at the newest session, with nothing pending
            bars = bars[bars[C.DATE] == bars[C.DATE].max()]
        for date, day in bars.groupby(C.DATE, sort=True):
            broker.open_session(date, dict(zip(day[C.SYMBOL], day[C.OPEN], strict=True)))
            broker.close_session(date, dict(zip(day[C.SYMBOL], day[C.CLOSE], strict=True)))

    def _market_bars(self) -> pd.DataFrame:
        if self._market_fs is None:
            raise DatasetError("the local broker needs `market_data` (the prices dataset path)")
        fs, _, path = self._market_fs
        if not fs.exists(path):
            raise DatasetError(f"market data '{self.market_data}' does not exist yet")
        return pd.read_parquet(io.BytesIO(fs.cat_file(path)))

    def save_local_state(self, broker: Any) -> None:
        if isinstance(broker, LocalPaperBroker):
            payload = json.dumps(broker.state, indent=1, default=str).encode()
            atomic_write_bytes(self.fs, f"{self.root}/local_account.json", payload)

    # ------------------------------------------------------------------------ records
    def write_record(self, kind: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, indent=1, default=str).encode()
        atomic_write_bytes(self.fs, f"{self.root}/{kind}/{_now_stamp()}.json", data)

    def newest_record(self, kind: str) -> dict[str, Any]:
        folder = f"{self.root}/{kind}"
        paths = sorted(self.fs.ls(folder, detail=False)) if self.fs.isdir(folder) else []
        paths = [p for p in paths if p.endswith(".json")]
        if not paths:
            raise DatasetError(f"no {kind} stored under '{self.filepath}' yet")
        return json.loads(self.fs.cat_file(paths[-1]))


def _alpaca(request: dict[str, Any]) -> Any:
    from stock_mlops.brokers.alpaca import AlpacaBroker  # noqa: PLC0415 - alpaca-py on demand

    live = bool(request.get("live"))
    if live and os.environ.get(LIVE_CONFIRMATION_VARIABLE) != LIVE_CONFIRMATION_VALUE:
        raise DatasetError(
            "trading.live is true but live trading is not confirmed: set "
            f"{LIVE_CONFIRMATION_VARIABLE}='{LIVE_CONFIRMATION_VALUE}' to trade real money"
        )
    settings = request.get("alpaca") or {}
    try:
        return AlpacaBroker.from_environment(
            paper=not live,
            url_override=settings.get("url_override"),
            timeout_seconds=settings.get("timeout_seconds", 10),
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


class BrokerAccountDataset(AbstractDataset[dict[str, Any], AccountSnapshot]):
    """Saves a snapshot request by asking the broker; loads the newest snapshot.

    Example catalog entry::

        broker_account:
          type: stock_mlops.datasets.BrokerAccountDataset
          filepath: ${_root}/03_primary/broker
          market_data: ${_root}/03_primary/prices.parquet
    """

    def __init__(
        self,
        *,
        filepath: str,
        market_data: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._store = _BrokerStore(filepath, market_data, credentials, fs_args)
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        broker = self._store.connect(data)
        try:
            snapshot = broker.account()
        except BrokerError as exc:
            raise DatasetError(f"reading the {data['broker']} account failed: {exc}") from None
        self._store.save_local_state(broker)
        self._store.write_record("snapshots", snapshot_to_dict(snapshot))
        logger.info(
            "%s account: cash %.2f, equity %.2f, %d positions",
            snapshot.broker,
            snapshot.cash,
            snapshot.equity,
            len(snapshot.positions),
        )

    def load(self) -> AccountSnapshot:
        return snapshot_from_dict(self._store.newest_record("snapshots"))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._store.filepath, "market_data": self._store.market_data}


class BrokerOrdersDataset(AbstractDataset[dict[str, Any], pd.DataFrame]):
    """Submits approved orders idempotently; loads the broker's reports of the newest submission.

    Example catalog entry::

        broker_orders:
          type: stock_mlops.datasets.BrokerOrdersDataset
          filepath: ${_root}/03_primary/broker
          market_data: ${_root}/03_primary/prices.parquet
    """

    def __init__(
        self,
        *,
        filepath: str,
        market_data: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._store = _BrokerStore(filepath, market_data, credentials, fs_args)
        self.metadata = metadata

    def save(self, data: dict[str, Any]) -> None:
        request, orders = data["request"], [OrderRequest(**o) for o in data["orders"]]
        broker = self._store.connect(request)
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
                f"order submission to {request['broker']} failed after {len(reports)} of "
                f"{len(orders)} orders: {exc}"
            ) from None
        self._store.save_local_state(broker)
        self._store.write_record(
            "submissions",
            {"request": request, "reports": [r.to_dict() for r in reports]},
        )
        logger.info("%d orders sent to %s", len(reports), request["broker"])

    def load(self) -> pd.DataFrame:
        record = self._store.newest_record("submissions")
        return pd.DataFrame(
            record["reports"],
            columns=[
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
            ],
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._store.filepath, "market_data": self._store.market_data}
