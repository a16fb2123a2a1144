"""The local account's journal: the source of truth, rebuilt from when its cache is gone, safe
between real processes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from helpers import PROJECT

from stock_mlops.brokers.local import replay
from stock_mlops.core.broker_types import BrokerRequest, OrderRequest, OrderSubmission
from stock_mlops.core.params import AlpacaBrokerParams, LocalBrokerParams
from stock_mlops.datasets import BrokerAccountDataset, BrokerOrdersDataset
from stock_mlops.datasets.broker import (
    AccountJournal,
    BrokerStateError,
    main,
    rebuild_account,
    verify_account,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def request_for(small_prices: pd.DataFrame) -> Callable[..., BrokerRequest]:
    def build(as_of: str, fill_at: str = "next_open") -> BrokerRequest:
        return BrokerRequest(
            broker="local",
            live=False,
            as_of=dt.date.fromisoformat(as_of),
            local=LocalBrokerParams(fill_at=fill_at, commission_bps=1.0, slippage_bps=5.0),
            alpaca=AlpacaBrokerParams(),
            market_bars=small_prices[small_prices["date"] <= pd.Timestamp(as_of)],
        )

    return build


def submission(request: BrokerRequest, **qty: float) -> OrderSubmission:
    day = request.as_of
    return OrderSubmission(
        request=request,
        orders=tuple(
            OrderRequest(f"red-{day:%Y%m%d}-{s}-buy", s, "buy", q, 100.0, day, day)
            for s, q in qty.items()
        ),
    )


def state_of(root: Path) -> dict:
    return json.loads((root / "local_account.json").read_text())


def journal(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "journal").glob("*.json"))]


def trade_two_days(root: Path, request_for) -> None:
    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission(request_for("2023-06-01"), AAPL=10.0, MSFT=5.0))
    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))


def test_every_change_is_one_journal_entry_and_the_account_is_its_replay(root, request_for):
    trade_two_days(root, request_for)

    entries = journal(root)
    assert [e["seq"] for e in entries] == [1, 2]
    kinds = [event["kind"] for e in entries for event in e["events"]]
    assert kinds[:2] == ["opened", "mark"] and kinds.count("order") == 2
    assert kinds.count("fill") == 2  # at the 2023-06-02 open
    state = state_of(root)
    assert state.pop("journal_seq") == 2
    assert replay(event for e in entries for event in e["events"]) == state
    assert verify_account(str(root)) == ""
    # Reading the account again changes nothing: no empty entries.
    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))
    assert len(journal(root)) == 2


def test_a_missing_account_file_is_rebuilt_from_the_journal_loudly_not_a_fresh_account(
    root, request_for, caplog
):
    trade_two_days(root, request_for)
    before = state_of(root)
    (root / "local_account.json").unlink()
    caplog.set_level(logging.WARNING)

    orders = BrokerOrdersDataset(filepath=str(root))
    orders.save(submission(request_for("2023-06-01"), AAPL=10.0, MSFT=5.0))

    assert "REBUILT the local broker account from its journal (2 entries)" in caplog.text
    assert "local_account.json was unusable: missing" in caplog.text
    assert state_of(root) == before
    # The orders the journal shows as submitted are not submitted again.
    assert orders.load()["status"].tolist() == ["filled", "filled"]
    assert len(journal(root)) == 2


def test_a_run_that_writes_no_entry_still_sweeps_the_journal_entry_a_killed_save_left(
    root, request_for, caplog
):
    # Killed between linking entry 3 and removing its temporary file: both names hold it.
    # (Found by the fault sweep at ``save:broker_account#11``.)
    from stock_mlops.datasets._storage import host_tag

    trade_two_days(root, request_for)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(finished.stdout)
    orphan = root / "journal" / f".0000000003.json.tmp-{host_tag()}-{dead_pid}-0123456789ab"
    os.link(root / "journal" / "0000000002.json", orphan)
    caplog.set_level(logging.WARNING)

    # The same day again: its events are committed already, so no entry is written.
    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))

    assert not orphan.exists()
    assert "removed 1 temporary file(s) of an interrupted save" in caplog.text
    assert [e["seq"] for e in journal(root)] == [1, 2]
    assert verify_account(str(root)) == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"cash": 1', "not valid JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"cash": Infinity, "positions": {}}', "non-finite number Infinity"),
        (b'{"cash": 5.0}', "it lacks positions"),
    ],
)
def test_a_corrupt_account_file_is_rebuilt_naming_the_file_and_the_problem(
    root, request_for, caplog, content, problem
):
    trade_two_days(root, request_for)
    before = state_of(root)
    (root / "local_account.json").write_bytes(content)
    caplog.set_level(logging.WARNING)

    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))

    assert f"{root}/local_account.json was unusable: " in caplog.text
    assert problem in caplog.text
    assert state_of(root) == before


def test_a_corrupt_journal_entry_stops_naming_the_file(root, request_for):
    trade_two_days(root, request_for)
    (root / "journal" / "0000000001.json").write_text('{"seq": 1, "events": [')
    (root / "local_account.json").unlink()

    with pytest.raises(BrokerStateError) as caught:
        BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))
    message = str(caught.value)
    assert f"journal entry {root}/journal/0000000001.json" in message
    assert "is corrupt" in message and "restore this file from a backup" in message


def test_a_gap_in_the_journal_stops_the_run(root, request_for):
    trade_two_days(root, request_for)
    (root / "journal" / "0000000001.json").unlink()
    with pytest.raises(BrokerStateError, match=r"has gaps: entries \[1\] are missing"):
        BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))


def test_an_account_file_behind_its_journal_is_brought_up_to_date(root, request_for, caplog):
    # A run killed between writing a journal entry and the account file.
    BrokerOrdersDataset(filepath=str(root)).save(submission(request_for("2023-06-01"), AAPL=10.0))
    stale = (root / "local_account.json").read_bytes()
    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))
    after = state_of(root)
    (root / "local_account.json").write_bytes(stale)
    caplog.set_level(logging.INFO)

    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))

    assert "was at journal entry 1 of 2: brought up to date" in caplog.text
    assert state_of(root) == after


def test_an_account_file_ahead_of_its_journal_names_the_rebuild_command(root, request_for):
    trade_two_days(root, request_for)
    (root / "journal" / "0000000002.json").unlink()
    with pytest.raises(BrokerStateError) as caught:
        BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-05"))
    assert "is at journal entry 2 but the journal" in str(caught.value)
    assert f"python -m stock_mlops.datasets.broker rebuild {root}" in str(caught.value)
    # The command rebuilds the file from the journal as it is.
    assert main(["rebuild", str(root)]) == 0
    assert state_of(root)["journal_seq"] == 1


def test_an_account_written_before_the_journal_existed_starts_one(root, request_for, caplog):
    trade_two_days(root, request_for)
    legacy = {k: v for k, v in state_of(root).items() if k != "journal_seq"}
    for entry in (root / "journal").iterdir():
        entry.unlink()
    (root / "local_account.json").write_text(json.dumps(legacy))
    caplog.set_level(logging.WARNING)

    BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-06"))

    assert "has no journal yet: starting one from it" in caplog.text
    (entry,) = journal(root)
    assert entry["events"][0] == {"kind": "restored", "state": legacy}
    assert verify_account(str(root)) == ""


def test_a_corrupt_account_file_without_a_journal_stops_naming_the_file(root, request_for):
    root.mkdir(parents=True)
    (root / "local_account.json").write_text('{"cash": ')
    with pytest.raises(BrokerStateError) as caught:
        BrokerAccountDataset(filepath=str(root)).save(request_for("2023-06-01"))
    message = str(caught.value)
    assert f"the local broker account file {root}/local_account.json is corrupt" in message
    assert "not valid JSON" in message and "no journal exists to rebuild it from" in message
    assert not (root / "journal").exists()


def test_a_writer_that_finds_its_entry_taken_retries_on_the_new_state(
    root, request_for, monkeypatch, caplog
):
    trade_two_days(root, request_for)
    real_append = AccountJournal.append
    sneaked = []

    def another_writer_first(self, seq, events, writer):
        if not sneaked:
            sneaked.append(seq)
            # A writer that did not hold the lock commits entry `seq` meanwhile.
            other = BrokerAccountDataset(filepath=str(root))
            other._lock = lambda purpose: _NoLock()
            other.save(request_for("2023-06-06"))
        return real_append(self, seq, events, writer)

    monkeypatch.setattr(AccountJournal, "append", another_writer_first)
    caplog.set_level(logging.WARNING)
    BrokerOrdersDataset(filepath=str(root)).save(submission(request_for("2023-06-06"), NVDA=3.0))

    assert "was written by another writer meanwhile; retrying on the new state" in caplog.text
    assert [e["seq"] for e in journal(root)] == [1, 2, 3, 4]
    state = state_of(root)
    assert "red-20230606-NVDA-buy" in state["orders"] and state["as_of"] == "2023-06-06"
    assert verify_account(str(root)) == ""


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def check(self):
        return None


WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    import pandas as pd
    from stock_mlops.core.broker_types import BrokerRequest, OrderRequest, OrderSubmission
    from stock_mlops.core.params import AlpacaBrokerParams, LocalBrokerParams
    from stock_mlops.datasets import BrokerOrdersDataset
    root, prices, symbols = sys.argv[1], pd.read_parquet(sys.argv[2]), sys.argv[3].split(",")
    day = dt.date(2023, 6, 1)
    local = LocalBrokerParams(fill_at="close", allow_close_fill=True)  # fills within this save
    request = BrokerRequest("local", False, day, local,
                            AlpacaBrokerParams(), prices[prices["date"] <= pd.Timestamp(day)])
    orders = tuple(OrderRequest(f"red-20230601-{s}-buy", s, "buy", 1.0, 100.0, day, day)
                   for s in symbols)
    BrokerOrdersDataset(filepath=root).save(OrderSubmission(request, orders))
    """
)


@pytest.mark.parametrize(
    "submissions",
    [
        ["AAPL,MSFT", "AAPL,MSFT", "AAPL,MSFT"],  # the same run three times at once
        ["AAPL", "MSFT", "NVDA"],  # three different writers at once
    ],
    ids=["same-orders", "different-orders"],
)
def test_three_processes_submitting_at_once_keep_exactly_one_set_of_orders_and_fills(
    root, market_data, submissions
):
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), market_data, symbols],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for symbols in submissions
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()

    expected = sorted({s for symbols in submissions for s in symbols.split(",")})
    state = state_of(root)
    assert sorted(o["symbol"] for o in state["orders"].values()) == expected
    assert sorted(f["symbol"] for f in state["fills"]) == expected
    assert {s: p["qty"] for s, p in state["positions"].items()} == dict.fromkeys(expected, 1.0)
    assert verify_account(str(root)) == ""
    events = [e for entry in journal(root) for e in entry["events"]]
    assert sum(e["kind"] == "opened" for e in events) == 1
    assert sorted(e["client_order_id"] for e in events if e["kind"] == "fill") == [
        f"red-20230601-{s}-buy" for s in expected
    ]


def test_rebuild_and_verify_from_the_command_line(root, request_for, capsys):
    trade_two_days(root, request_for)
    assert main(["verify", str(root)]) == 0
    state = state_of(root)
    state["cash"] += 1.0
    (root / "local_account.json").write_text(json.dumps(state))
    assert main(["verify", str(root)]) == 1
    assert "differs from the replay of 2 journal entries" in capsys.readouterr().out
    rebuilt = rebuild_account(str(root))
    assert rebuilt["cash"] == state["cash"] - 1.0
    assert verify_account(str(root)) == ""
