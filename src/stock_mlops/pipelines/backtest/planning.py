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
of the bars of the period's sessions), the ``trading`` and ``backtest`` parameters, the team and
the project's own code, so an upgrade replays once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

import stock_mlops
from stock_mlops.core import columns as C
from stock_mlops.core.params import BacktestParams, TradingParams
from stock_mlops.pipelines.backtest.replay import replay_bars

# The key of the fingerprint in the ``backtest_permutation`` document.
FINGERPRINT_KEY = "inputs_fingerprint"


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
    bars, _ = replay_bars(predictions, prices)
    bars = bars.sort_values([C.SYMBOL, C.DATE], kind="stable")
    digest = hashlib.sha256()
    for frame in (predictions, bars):
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    settings: dict[str, Any] = {
        "trading": trading.model_dump(mode="json"),
        "backtest": backtest.model_dump(mode="json"),
        "team": team,
        "code": _code_digest(),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def plan(fingerprint: str, previous_permutation: dict[str, Any] | None) -> BacktestPlan:
    """Replay unless the stored permutation test was computed from these very inputs."""
    stored = (previous_permutation or {}).get(FINGERPRINT_KEY)
    return BacktestPlan(due=stored != fingerprint, fingerprint=fingerprint)
