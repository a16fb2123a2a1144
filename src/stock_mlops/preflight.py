"""A Ludwig config that cannot be valid is refused when the run starts, before Ludwig loads.

Importing Ludwig takes most of a minute on a small machine, and the training pipeline's own
check (:mod:`stock_mlops.pipelines.training.config_validation`, which also runs Ludwig's full
schema) only starts after it. What can be decided without Ludwig is decided here, from the YAML,
the parameters and the feature registry: the YAML parses to a mapping, every top-level key is one
Ludwig knows, every input is a column that ``features`` will have, the output is a target, and
the project's rules (no random split, no target as input). The full schema check stays where it
is: this check only refuses configs that would fail there anyway, a minute later.
"""

from __future__ import annotations

import difflib
from typing import Any

from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.kernel import FLOAT_PRICE_COLUMNS
from stock_mlops.pipelines.feature_engineering.registry import feature_names
from stock_mlops.pipelines.training.config_validation import (
    FORBIDDEN_INPUTS,
    UNSUPPORTED_KEYS,
    LudwigConfigError,
    _check_inputs,
    _check_output,
    _check_split,
    check_search,
)

# The top-level properties of Ludwig 0.17's ECD schema
# (``ludwig.config_validation.validation.get_schema("ecd")["properties"]``); a test compares
# this list with the installed Ludwig, so an upgrade that changes it fails loudly.
LUDWIG_TOP_LEVEL_KEYS = frozenset(
    {
        "backend",
        "combiner",
        "defaults",
        "hyperopt",
        "input_features",
        "ludwig_version",
        "model_type",
        "output_features",
        "preprocessing",
        "preset",
        "trainer",
    }
)


def feature_columns(feature_engineering: FeatureEngineeringParams) -> list[str]:
    """The columns ``features`` will have with these parameters (from the feature registry).

    Args:
        feature_engineering: ``params:feature_engineering``.

    Returns:
        Symbol, date, the price columns, every registry feature, the target date and targets.
    """
    names = feature_names(feature_engineering.indicators, feature_engineering.calendar_features)
    return [C.SYMBOL, C.DATE, *FLOAT_PRICE_COLUMNS, *names, C.TARGET_DATE, *C.TARGETS]


def check_ludwig_config(
    config: Any, feature_engineering: FeatureEngineeringParams, source: str = "the Ludwig config"
) -> None:
    """Refuses a Ludwig config that cannot be valid, without importing Ludwig.

    Args:
        config: The parsed YAML.
        feature_engineering: ``params:feature_engineering`` (decides the feature columns).
        source: How to name the config in messages (its path).

    Raises:
        LudwigConfigError: Naming the config, the key and the reason.
    """
    if not isinstance(config, dict) or not config:
        raise LudwigConfigError(f"{source}: empty or not a mapping of Ludwig sections")
    unknown = sorted(set(config) - LUDWIG_TOP_LEVEL_KEYS)
    if unknown:
        hints = [_did_you_mean(key, LUDWIG_TOP_LEVEL_KEYS) for key in unknown]
        raise LudwigConfigError(
            f"{source}: unknown top-level key(s) {unknown}{''.join(hints)}; Ludwig would "
            f"silently ignore them (Ludwig's keys: {sorted(LUDWIG_TOP_LEVEL_KEYS)})"
        )
    for key, reason in UNSUPPORTED_KEYS.items():
        if key in config:
            raise LudwigConfigError(f"{source}: '{key}' is not supported here: {reason}")
    columns = feature_columns(feature_engineering)
    _check_unknown_inputs(config.get("input_features"), columns, source)
    try:
        _check_split(config)
        _check_inputs(config, set(columns))
        _check_output(config)
        check_search(config)
    except LudwigConfigError as exc:
        raise LudwigConfigError(f"{source}: {exc}") from None


def _check_unknown_inputs(features: Any, columns: list[str], source: str) -> None:
    """An input that is not a column, named with the closest column (the typo case)."""
    if not isinstance(features, list):
        return
    allowed = [c for c in columns if c not in FORBIDDEN_INPUTS and not c.startswith("target_")]
    for position, feature in enumerate(features):
        name = feature.get("name") if isinstance(feature, dict) else None
        if isinstance(name, str) and name not in columns:
            raise LudwigConfigError(
                f"{source}: input_features[{position}].name: '{name}' is not a column of "
                f"features{_did_you_mean(name, allowed)} (available: {sorted(allowed)})"
            )


def _did_you_mean(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
