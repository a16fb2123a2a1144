"""The project's words, each spelled once: model, fold and split names, direction signs, stamps.

Pipelines and datasets import these names instead of repeating string literals, so a rename is
one edit and a typo is an ImportError, not a silently empty filter.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

from stock_mlops.core import columns as C

# The team's own (Ludwig) model in evaluation tables; baselines have their own names.
TEAM_MODEL = "ludwig"
# The chronological fold defined by training.split (the deployed model is trained on it).
HOLDOUT = "holdout"
# Splits by target date: fit, early stopping, the promotion gate, the reported (backtested) test.
TRAIN, VALIDATION, GATE, TEST = "train", "validation", "gate", "test"
# The key of the single model of a pooled forecaster (per-symbol models are keyed by symbol).
POOLED = "__pooled__"

# Registered model kinds (the version tag ``kind``): the team's Ludwig model or the naive
# last-close forecaster every registry starts with as its champion.
LUDWIG_MODEL, NAIVE_MODEL = "ludwig", "naive_last_close"

# A predicted or realised direction as a sign; a "flat" call is no call.
DIRECTION_SIGN = {C.UP: 1, C.DOWN: -1, C.FLAT: 0}

NS_PER_DAY = 86_400 * 10**9

# What a feature measures; every feature group of the registry declares one. Returns,
# volatility, oscillators and z-scores are scale-free (their distribution can drift for a
# reason); price levels, price differences and ranges, cumulative volume and calendar fields move
# with the price or the date, so they "drift" by construction.
FeatureKind = Literal[
    "return",
    "volatility",
    "oscillator",
    "zscore",
    "price_level",
    "price_difference",
    "price_range",
    "volume_level",
    "calendar",
]
FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)

# File-name stamps of immutable records (raw archive objects, broker snapshots): sortable text.
UTC_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"


def utc_stamp(moment: dt.datetime | None = None) -> str:
    """``moment`` (default: now) as a sortable UTC stamp such as ``20240102T210000000000Z``."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime(UTC_STAMP_FORMAT)


def parse_utc_stamp(text: str) -> dt.datetime:
    """The inverse of :func:`utc_stamp` (timezone-aware UTC)."""
    return dt.datetime.strptime(text, UTC_STAMP_FORMAT).replace(tzinfo=dt.UTC)


class Unchanged:
    """What a node returns for a stored output it leaves as it is (a day without retraining).

    The project's datasets skip saving it, so the stored model, tables and registry stay exactly
    as they were and later nodes read them back. There is one instance, :data:`UNCHANGED`.
    """

    _instance: Unchanged | None = None

    def __new__(cls) -> Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED"

    def __deepcopy__(self, memo: dict) -> Unchanged:
        return self


UNCHANGED = Unchanged()
