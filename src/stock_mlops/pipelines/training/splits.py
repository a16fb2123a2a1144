"""Chronological splits. Rows are assigned by the date of their *target*, so no training label
lies in a later slice (a row dated on train_end predicts the next session and therefore belongs
to validation).

The holdout fold has four slices: train (fits the model), validation (chooses the
early-stopping epoch and nothing else), gate (decides promotion: rows that neither fitted nor
early-stopped the model) and test (reported and backtested). It is either counted in NYSE
sessions back from the run date (``training.window``) or given as fixed dates
(``training.split``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stock_mlops.core import calendar
from stock_mlops.core import columns as C
from stock_mlops.core.params import SplitParams, WalkForwardParams, WindowParams
from stock_mlops.core.vocabulary import GATE, HOLDOUT, TEST, TRAIN, VALIDATION

SPLITS = (TRAIN, VALIDATION, GATE, TEST)


@dataclass(frozen=True)
class Fold:
    """One chronological split by target date.

    ``train_start < train <= train_end < validation <= validation_end < gate <= gate_end <
    test <= test_end``; ``gate_end`` None means no gate slice (walk-forward folds), ``test_end``
    None means no upper bound, ``train_start`` None means all history.
    """

    name: str
    train_end: pd.Timestamp
    validation_end: pd.Timestamp
    gate_end: pd.Timestamp | None = None
    test_end: pd.Timestamp | None = None
    train_start: pd.Timestamp | None = None

    def describe(self) -> dict[str, str | None]:
        """The boundaries as ISO dates (for tags, logs and the model card)."""

        def iso(day: pd.Timestamp | None) -> str | None:
            return None if day is None else str(pd.Timestamp(day).date())

        return {
            "train_start": iso(self.train_start),
            "train_end": iso(self.train_end),
            "validation_end": iso(self.validation_end),
            "gate_end": iso(self.gate_end),
            "test_end": iso(self.test_end),
        }


def fixed_fold(split: SplitParams) -> Fold:
    """The holdout fold of ``training.split`` (fixed dates)."""
    validation_end = pd.Timestamp(split.validation_end)
    gate_end = (
        pd.Timestamp(split.gate_end) if split.gate_end else validation_end + pd.DateOffset(months=6)
    )
    return Fold(
        name=HOLDOUT,
        train_end=pd.Timestamp(split.train_end),
        validation_end=validation_end,
        gate_end=gate_end,
        test_end=pd.Timestamp(split.test_end) if split.test_end else None,
    )


def window_fold(window: WindowParams, as_of: pd.Timestamp, first_target: pd.Timestamp) -> Fold:
    """The holdout fold counted in NYSE sessions back from ``as_of`` (the newest target date).

    Args:
        window: ``training.window``.
        as_of: The run date: the newest target date a row may have.
        first_target: The oldest target date in the data.

    Returns:
        The fold.

    Raises:
        ValueError: When the data hold fewer sessions than the window needs.
    """
    sessions = calendar.sessions_between(first_target, as_of)
    held_out = window.test_sessions + window.gate_sessions + window.validation_sessions
    needed = held_out + (window.train_sessions or 60)
    if len(sessions) < needed:
        raise ValueError(
            f"training.window needs {needed} sessions of labelled rows up to {as_of.date()} "
            f"({held_out} held out and at least {window.train_sessions or 60} to train on); the "
            f"data hold {len(sessions)} from {first_target.date()}: lower the window's sessions"
        )
    test_start = len(sessions) - window.test_sessions
    gate_start = test_start - window.gate_sessions
    validation_start = gate_start - window.validation_sessions
    train_start = (
        sessions[validation_start - window.train_sessions] if window.train_sessions else None
    )
    return Fold(
        name=HOLDOUT,
        train_end=sessions[validation_start - 1],
        validation_end=sessions[gate_start - 1],
        gate_end=sessions[test_start - 1],
        test_end=sessions[-1],
        train_start=train_start,
    )


def walk_forward_folds(params: WalkForwardParams, last_target: pd.Timestamp) -> list[Fold]:
    """Expanding-window yearly folds: train on everything before, validate on the months just
    before the test year, test on the year (no gate: these folds only report)."""
    last_year = params.last_test_year or pd.Timestamp(last_target).year
    folds = []
    for year in range(params.first_test_year, last_year + 1):
        validation_end = pd.Timestamp(year - 1, 12, 31)
        train_end = validation_end - pd.DateOffset(months=params.validation_months)
        folds.append(Fold(str(year), train_end, validation_end, None, pd.Timestamp(year, 12, 31)))
    return folds


def labelled_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Rows whose next-day target is known."""
    return features[features[C.TARGET_CLOSE].notna()]


def split_rows(labelled: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    """The train, validation, gate and test rows of a fold, by target date."""
    target = labelled[C.TARGET_DATE]
    train = target <= fold.train_end
    if fold.train_start is not None:
        train &= target >= fold.train_start
    validation = (target > fold.train_end) & (target <= fold.validation_end)
    if fold.gate_end is None:
        gate = pd.Series(False, index=labelled.index)
        after = target > fold.validation_end
    else:
        gate = (target > fold.validation_end) & (target <= fold.gate_end)
        after = target > fold.gate_end
    if fold.test_end is not None:
        after &= target <= fold.test_end
    return {
        TRAIN: labelled[train],
        VALIDATION: labelled[validation],
        GATE: labelled[gate],
        TEST: labelled[after],
    }
