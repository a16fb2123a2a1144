"""Whether this run replays the backtest, or its stored results still describe its inputs.

The backtest replays the team model's out-of-sample predictions, which only change when the
model is retrained. On the daily loop's other days its inputs are the same predictions, the same
bars of the same period (the day's new bar falls after it) and the same parameters, so a replay
would write the same trades, equity and permutation test again: several seconds a day of a
season spent recomputing a known answer. The stored permutation document carries the
fingerprint of the inputs it was computed from (it is written after the trades and the equity,
so a run stopped halfway leaves none or an old one); when this run's fingerprint is the same,
the replay and the permutation test return :data:`~stock_mlops.core.vocabulary.UNCHANGED` and
the summary, charts and MLflow metrics are rebuilt from the stored tables.

The fingerprint covers the rows the replay reads (the predictions in the period, every column
of the bars of the period's sessions), the exchange calendar's next session of each of them, the
``trading`` and ``backtest`` parameters, the team, the project's own code and the versions of the
libraries that compute the replay, so an upgrade replays once. The document also records a
digest of the trades and equity tables it was computed beside, and the plan compares it with the
tables as stored: a replay that stopped after rewriting the tables but before the document (or a
table lost since) is replayed again rather than reported under the old fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import stock_mlops
from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.pipelines.backtest.replay import replay_bars

# The keys of the inputs' fingerprint and of the tables' digest in ``backtest_permutation``.
FINGERPRINT_KEY = "inputs_fingerprint"
TABLES_KEY = "tables_sha256"
# Libraries whose arithmetic or calendar the replay's results depend on.
_LIBRARIES = ("numpy", "pandas", "exchange_calendars")


@dataclass(frozen=True)
class BacktestPlan:
    """What a run does in the backtest pipeline.

    Attributes:
        due: Replay (the inputs differ from those of the stored results, or none are stored).
        fingerprint: sha256 of this run's inputs, stored with the permutation test.
    """

    due: bool
    fingerprint: str


@functools.cache
def _code_digest() -> str:
    """sha256 of every module of the installed ``stock_mlops`` package (read once)."""
    package = Path(stock_mlops.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(
    predictions: pd.DataFrame,
    prices: pd.DataFrame,
    trading: TradingParams,
    backtest: BacktestParams,
    team: str,
) -> str:
    """sha256 of what a replay of ``predictions`` reads.

    Args:
        predictions: Log-shaped rows of the period (``nodes.backtest_predictions``).
        prices: The ``prices`` dataset.
        trading: ``params:trading``.
        backtest: ``params:backtest``.
        team: ``params:team``.

    Returns:
        A hex digest; equal digests mean a replay would compute the same results.
    """
    bars, sessions = replay_bars(predictions, prices)
    bars = bars.sort_values([C.SYMBOL, C.DATE], kind="stable")
    next_sessions = pd.DataFrame(
        {"session": sessions, "next": calendar.next_sessions(pd.Series(sessions)).to_numpy()}
    )
    digest = hashlib.sha256()
    for frame in (predictions, bars, next_sessions):
        digest.update(_frame_digest(frame).encode())
    settings: dict[str, Any] = {
        "trading": trading.model_dump(mode="json"),
        "backtest": backtest.model_dump(mode="json"),
        "team": team,
        "code": _code_digest(),
        "libraries": {name: importlib.metadata.version(name) for name in _LIBRARIES},
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def tables_digest(trades: pd.DataFrame, equity: pd.DataFrame) -> str:
    """sha256 of the trades and equity tables (columns, dtypes and every value)."""
    return hashlib.sha256(
        "".join(_frame_digest(frame) for frame in (trades, equity)).encode()
    ).hexdigest()


def _frame_digest(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def plan(
    fingerprint: str, previous_permutation: dict[str, Any] | None, stored_tables: str | None
) -> BacktestPlan:
    """Replay unless the stored permutation test was computed from these very inputs, beside
    the trades and equity tables that are stored now (``stored_tables``: their digest)."""
    previous = previous_permutation or {}
    current = (
        previous.get(FINGERPRINT_KEY) == fingerprint
        and stored_tables is not None
        and previous.get(TABLES_KEY) == stored_tables
    )
    return BacktestPlan(due=not current, fingerprint=fingerprint)
