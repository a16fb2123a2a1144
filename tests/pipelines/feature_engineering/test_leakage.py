"""Leakage firewall: no feature may change when later bars arrive or change.

Parametrised over the registry's ``feature_names``, so a feature added to the registry is
checked here without editing this file. TA-Lib is deterministic, so values up to the cut must be
exactly equal (allclose with rtol=0, atol=0), not merely close.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from helpers import OTHER_WINDOWS

from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams, IndicatorParams
from stock_mlops.pipelines.feature_engineering.nodes import build_features
from stock_mlops.pipelines.feature_engineering.registry import feature_names

# Default windows, and a second set so that every parameter path of the registry is exercised.
PARAMETER_SETS = {"default": {}, "other_windows": OTHER_WINDOWS}
# Cut dates: mid-series, the trading day before AAPL's 2020 split, and a Friday before a holiday.
CUTS = ["2016-06-30", "2020-08-28", "2022-12-23"]


def _features_of(params_id: str) -> list[str]:
    """The registry's feature names for one of the parameter sets."""
    p = FeatureEngineeringParams.parse(PARAMETER_SETS[params_id])
    return feature_names(p.indicators, p.calendar_features)


CASES = [(params_id, name) for params_id in PARAMETER_SETS for name in _features_of(params_id)]


@pytest.fixture(scope="module")
def computed(small_prices: pd.DataFrame) -> Callable[[str, str | None, str], pd.DataFrame]:
    """Features per (parameter set, cut, variant), each computed once for the whole module."""

    @functools.cache
    def compute(params_id: str, cut: str | None, variant: str) -> pd.DataFrame:
        prices = small_prices
        if variant == "cut":
            prices = prices[prices[C.DATE] <= cut]
        elif variant == "future_changed":
            # Same history, but every bar after the cut is different (prices doubled).
            later = prices[C.DATE] > cut
            scaled = prices.loc[later, C.OHLC] * 2.0
            prices = prices.copy()
            prices.loc[later, C.OHLC] = scaled
        return build_features(prices, FeatureEngineeringParams.parse(PARAMETER_SETS[params_id]))

    return compute


def test_the_registry_has_features_and_no_target_among_them():
    for params_id in PARAMETER_SETS:
        names = _features_of(params_id)
        assert len(names) >= 20
        assert not set(names) & set(C.TARGETS + [C.TARGET_DATE])


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize(("params_id", "feature"), CASES)
def test_feature_up_to_the_cut_ignores_later_bars(computed, params_id, feature, cut):
    truncated = computed(params_id, cut, "cut")
    for variant in ("full", "future_changed"):
        longer = computed(params_id, cut, variant)
        longer = longer[longer[C.DATE] <= cut].reset_index(drop=True)

        assert longer[[C.SYMBOL, C.DATE]].equals(truncated[[C.SYMBOL, C.DATE]])
        assert truncated[C.SYMBOL].nunique() == 3
        np.testing.assert_allclose(
            truncated[feature].to_numpy(),
            longer[feature].to_numpy(),
            rtol=0,
            atol=0,
            err_msg=f"{feature} up to {cut} changed when bars after it were {variant}",
        )


def test_the_firewall_would_catch_a_leak(computed):
    # Sanity check of the method: the target of the last bar before the cut is future data,
    # and it does change when later bars arrive.
    cut = CUTS[0]
    truncated = computed("default", cut, "cut")
    full = computed("default", cut, "full")
    full = full[full[C.DATE] <= cut].reset_index(drop=True)
    assert not np.array_equal(
        truncated[C.TARGET_CLOSE].to_numpy(), full[C.TARGET_CLOSE].to_numpy(), equal_nan=True
    )


def test_default_parameters_are_the_project_defaults():
    assert FeatureEngineeringParams.parse(PARAMETER_SETS["default"]).indicators == IndicatorParams()
