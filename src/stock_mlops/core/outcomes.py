"""Small table operations several pipelines share: the as-of date, the team model's evaluation
rows, and predictions joined with the closes that really followed them."""

from __future__ import annotations

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core.vocabulary import HOLDOUT, TEAM_MODEL


def as_of_date(run_date: str | None, dates: pd.Series) -> pd.Timestamp:
    """``run_date`` when given, else the newest of ``dates``.

    Args:
        run_date: The run's ``run_date`` parameter (None: the newest date in the data).
        dates: The dates of the table the run works on.

    Returns:
        The as-of date as a Timestamp.
    """
    return pd.Timestamp(run_date) if run_date else pd.Timestamp(dates.max())


def team_model_rows(evaluation: pd.DataFrame, split: str | None = None) -> pd.DataFrame:
    """The team model's rows of the holdout fold in ``evaluation_predictions``.

    Args:
        evaluation: The ``evaluation_predictions`` dataset.
        split: Keep only this split (``validation`` or ``test``); None keeps both.

    Returns:
        The matching rows (a view-free copy is not needed: callers do not mutate).
    """
    mask = (evaluation["model"] == TEAM_MODEL) & (evaluation["fold"] == HOLDOUT)
    if split is not None:
        mask &= evaluation["split"] == split
    return evaluation[mask]


def join_realised_closes(log: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Prediction-log rows whose target session has a close, with that close as ``actual``.

    Joined by symbol and target *date*, never by row position (the predecessor's mistake:
    holidays and re-runs shifted its rows).

    Args:
        log: Rows with ``symbol`` and ``target_date`` (the ``predictions`` log or a slice).
        prices: The ``prices`` dataset.

    Returns:
        The rows that have a realised close, with an ``actual`` column added.
    """
    realised = prices[[C.SYMBOL, C.DATE, C.CLOSE]].rename(
        columns={C.DATE: C.TARGET_DATE, C.CLOSE: "actual"}
    )
    keyed = log.assign(**{C.TARGET_DATE: pd.to_datetime(log[C.TARGET_DATE])})
    return keyed.merge(realised, on=[C.SYMBOL, C.TARGET_DATE], how="inner")
