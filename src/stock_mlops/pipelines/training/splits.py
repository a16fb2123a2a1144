"""Chronological splits. Rows are assigned by the date of their *target*, so no training label
lies in the validation or test period (a row dated on train_end predicts the next session and
therefore belongs to validation)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.params import SplitParams, WalkForwardParams

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Fold:
    """One chronological split: train <= train_end < validation <= validation_end < test."""

    name: str
    train_end: pd.Timestamp
    validation_end: pd.Timestamp
    test_end: pd.Timestamp | None = None


def holdout_fold(split: SplitParams) -> Fold:
    """The fold defined by ``training.split`` (the deployed model is trained on it)."""
    return Fold(
        name="holdout",
        train_end=pd.Timestamp(split.train_end),
        validation_end=pd.Timestamp(split.validation_end),
        test_end=pd.Timestamp(split.test_end) if split.test_end else None,
    )


def walk_forward_folds(params: WalkForwardParams, last_target: pd.Timestamp) -> list[Fold]:
    """Expanding-window yearly folds: train on everything before, validate on the months just
    before the test year, test on the year."""
    last_year = params.last_test_year or pd.Timestamp(last_target).year
    folds = []
    for year in range(params.first_test_year, last_year + 1):
        validation_end = pd.Timestamp(year - 1, 12, 31)
        train_end = validation_end - pd.DateOffset(months=params.validation_months)
        folds.append(Fold(str(year), train_end, validation_end, pd.Timestamp(year, 12, 31)))
    return folds


def labelled_rows(features: pd.DataFrame) -> pd.DataFrame:
    """Rows whose next-day target is known."""
    return features[features[C.TARGET_CLOSE].notna()]


def split_rows(labelled: pd.DataFrame, fold: Fold) -> dict[str, pd.DataFrame]:
    """The train, validation and test rows of a fold, by target date."""
    target = labelled[C.TARGET_DATE]
    test_mask = target > fold.validation_end
    if fold.test_end is not None:
        test_mask &= target <= fold.test_end
    return {
        "train": labelled[target <= fold.train_end],
        "validation": labelled[(target > fold.train_end) & (target <= fold.validation_end)],
        "test": labelled[test_mask],
    }
