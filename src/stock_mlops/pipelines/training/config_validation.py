"""Checks a team's Ludwig config before any training starts.

Ludwig's own schema accepts unknown top-level keys silently (the predecessor's ``model:`` block was
dropped that way, leaving every model near-linear), so this project rejects them itself, then runs
Ludwig's schema validation, then checks the config against the ``features`` columns.
"""

from __future__ import annotations

import copy
from typing import Any

from stock_mlops.core import columns as C

NUMBER_TARGETS = {C.TARGET_CLOSE, C.TARGET_RETURN}
CATEGORY_TARGETS = {C.TARGET_DIRECTION}
# Columns that describe the future or the row itself and must never be model inputs.
FORBIDDEN_INPUTS = {C.TARGET_DATE, C.DATE, *C.TARGETS}
# Keys this project does not act on, with the reason given to the user.
UNSUPPORTED_KEYS = {
    "backend": "training runs on Ludwig's local backend (training.executor spreads the models)",
}


class LudwigConfigError(ValueError):
    """The Ludwig config is invalid; the message names the offending key."""


def validate_ludwig_config(
    config: dict[str, Any], feature_columns: list[str], scope: str
) -> dict[str, Any]:
    """Validates a Ludwig config against Ludwig's schema and this project's rules.

    Args:
        config: The parsed YAML.
        feature_columns: Columns of the ``features`` dataset.
        scope: ``per_symbol`` or ``pooled`` (pooled models get ``symbol`` as a category input).

    Returns:
        The config to train with (a copy; ``symbol`` added as an input for pooled models).

    Raises:
        LudwigConfigError: Naming the key and the reason.
    """
    if not isinstance(config, dict) or not config:
        raise LudwigConfigError("the Ludwig config is empty or not a mapping")
    config = copy.deepcopy(config)
    _check_top_level_keys(config)
    _check_split(config)
    inputs = _check_inputs(config, set(feature_columns))
    _check_output(config)
    check_search(config)
    if scope == "pooled" and C.SYMBOL not in inputs:
        config["input_features"].append({"name": C.SYMBOL, "type": "category"})
    _check_ludwig_schema(config)
    return config


def _check_top_level_keys(config: dict[str, Any]) -> None:
    from ludwig.config_validation.validation import get_schema  # noqa: PLC0415 - heavy

    model_type = config.get("model_type", "ecd")
    if model_type != "ecd":
        raise LudwigConfigError(f"model_type: '{model_type}' is not supported (use 'ecd')")
    allowed = set(get_schema(model_type)["properties"])
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise LudwigConfigError(
            f"unknown top-level key(s) {unknown}: Ludwig would silently ignore them. "
            f"Allowed keys: {sorted(allowed)}"
        )
    for key, reason in UNSUPPORTED_KEYS.items():
        if key in config:
            raise LudwigConfigError(f"'{key}' is not supported here: {reason}")


def _check_split(config: dict[str, Any]) -> None:
    split = (config.get("preprocessing") or {}).get("split")
    if split is None:
        return
    kind = split.get("type", "random") if isinstance(split, dict) else split
    if kind == "random":
        raise LudwigConfigError(
            "preprocessing.split.type: a random split mixes future prices into training "
            "(look-ahead leakage); remove preprocessing.split, the project splits by the dates "
            "in training.split"
        )
    raise LudwigConfigError(
        f"preprocessing.split.type: '{kind}' would be ignored: the project passes explicit "
        "train/validation sets split by training.split dates; remove preprocessing.split"
    )


def _check_inputs(config: dict[str, Any], columns: set[str]) -> set[str]:
    features = config.get("input_features")
    if not isinstance(features, list) or not features:
        raise LudwigConfigError("input_features: must be a non-empty list")
    names: set[str] = set()
    for position, feature in enumerate(features):
        name = feature.get("name") if isinstance(feature, dict) else None
        if not name:
            raise LudwigConfigError(f"input_features[{position}]: has no name")
        if name in FORBIDDEN_INPUTS or name.startswith("target_"):
            raise LudwigConfigError(
                f"input_features[{position}].name: '{name}' is a target or date column; using "
                "it as an input leaks the answer"
            )
        if name not in columns:
            raise LudwigConfigError(
                f"input_features[{position}].name: '{name}' is not a column of features "
                f"(available: {sorted(columns - FORBIDDEN_INPUTS)})"
            )
        if name in names:
            raise LudwigConfigError(f"input_features[{position}].name: '{name}' appears twice")
        names.add(name)
    return names


def _check_output(config: dict[str, Any]) -> None:
    outputs = config.get("output_features")
    if not isinstance(outputs, list) or len(outputs) != 1:
        raise LudwigConfigError("output_features: must list exactly one target")
    output = outputs[0]
    name, kind = output.get("name"), output.get("type")
    if name in NUMBER_TARGETS:
        if kind != "number":
            raise LudwigConfigError(f"output_features[0].type: '{name}' needs type 'number'")
    elif name in CATEGORY_TARGETS:
        if kind != "category":
            raise LudwigConfigError(f"output_features[0].type: '{name}' needs type 'category'")
    else:
        raise LudwigConfigError(
            f"output_features[0].name: '{name}' is not a target column "
            f"(one of {sorted(NUMBER_TARGETS | CATEGORY_TARGETS)})"
        )


def check_search(config: dict[str, Any]) -> None:
    """The ``hyperopt`` section can run (see :mod:`.hyperopt`)."""
    from stock_mlops.pipelines.training.hyperopt import search_spec  # noqa: PLC0415 - it imports us

    search_spec(config)


def _check_ludwig_schema(config: dict[str, Any]) -> None:
    from ludwig.error import ConfigValidationError  # noqa: PLC0415 - heavy
    from ludwig.schema.model_types.base import ModelConfig  # noqa: PLC0415

    from stock_mlops.models import ludwig_runtime  # noqa: PLC0415

    ludwig_runtime.install()
    try:
        ModelConfig.from_dict(copy.deepcopy(config))
    except ConfigValidationError as exc:
        raise LudwigConfigError(f"Ludwig's schema rejects the config: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise LudwigConfigError(f"Ludwig cannot read the config: {exc}") from None


def input_columns(config: dict[str, Any]) -> list[str]:
    """Names of the config's input features, in order."""
    return [feature["name"] for feature in config["input_features"]]


def output_feature(config: dict[str, Any]) -> tuple[str, str]:
    """``(name, type)`` of the config's single output feature."""
    output = config["output_features"][0]
    return output["name"], output["type"]
