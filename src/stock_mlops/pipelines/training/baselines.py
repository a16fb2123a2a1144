"""Naive baselines every model must beat, fitted only on a fold's training rows.

All return a predicted next-day close for each evaluation row:
- ``naive_last_close``: tomorrow's close is today's close (a random walk).
- ``mean_drift``: today's close grown by the symbol's mean daily return over the training rows.
- ``ridge``: a ridge regression of the model's target on the model's numeric inputs
  (standardised with training statistics), per symbol or pooled like the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C

NAIVE = "naive_last_close"
DRIFT = "mean_drift"
RIDGE = "ridge"
# In the order the evaluation lists them.
BASELINES = (NAIVE, DRIFT, RIDGE)


def naive_last_close(rows: pd.DataFrame) -> pd.Series:
    """Today's close as the forecast of tomorrow's."""
    return rows[C.CLOSE].astype(float)


def mean_drift(train: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Close times (1 + the symbol's mean training return); symbols unseen in training get 0."""
    drift = train.groupby(C.SYMBOL)[C.TARGET_RETURN].mean()
    return rows[C.CLOSE] * (1 + rows[C.SYMBOL].map(drift).fillna(0.0))


def ridge(
    train: pd.DataFrame,
    rows: pd.DataFrame,
    inputs: list[str],
    target: str,
    alpha: float,
    scope: str,
) -> pd.Series:
    """Ridge forecasts of ``target`` converted to a close (per symbol, or pooled)."""
    from sklearn.linear_model import Ridge  # noqa: PLC0415 - only the training pipeline needs it
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    numeric = [c for c in inputs if c != C.SYMBOL]
    goal = target if target in (C.TARGET_CLOSE, C.TARGET_RETURN) else C.TARGET_RETURN
    predicted = pd.Series(np.nan, index=rows.index)
    groups = (
        [(None, train, rows)]
        if scope == "pooled"
        else [(s, train[train[C.SYMBOL] == s], part) for s, part in rows.groupby(C.SYMBOL)]
    )
    for _, fit_rows, eval_rows in groups:
        if len(fit_rows) < 2 or eval_rows.empty:
            continue
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
        design = _design(fit_rows, numeric, scope)
        model.fit(design, fit_rows[goal].to_numpy())
        values = model.predict(_design(eval_rows, numeric, scope, columns=design.columns))
        predicted.loc[eval_rows.index] = values
    if goal == C.TARGET_RETURN:
        return rows[C.CLOSE] * (1 + predicted)
    return predicted


def _design(
    rows: pd.DataFrame, numeric: list[str], scope: str, columns: pd.Index | None = None
) -> pd.DataFrame:
    design = rows[numeric].astype(float)
    if scope == "pooled":
        design = pd.concat(
            [design, pd.get_dummies(rows[C.SYMBOL], prefix="symbol", dtype=float)], axis=1
        )
    if columns is not None:
        design = design.reindex(columns=columns, fill_value=0.0)
    return design
