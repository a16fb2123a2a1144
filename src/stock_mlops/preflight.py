"""A Ludwig config that cannot be valid is refused when the run starts, before Ludwig loads.

Importing Ludwig takes most of a minute on a small machine, and the training pipeline's own
check (:mod:`stock_mlops.pipelines.training.config_validation`, which also runs Ludwig's full
schema) only starts after it. What can be decided without Ludwig is decided here, from the YAML,
the parameters and the feature registry: the YAML parses to a mapping, every top-level key is one
Ludwig knows, every input is a column that ``features`` will have, the output is a target, and
the project's rules (no random split, no target as input). The full schema check stays where it
is: this check only refuses configs that would fail there anyway, a minute later.

It runs twice, from the same code. The project's ``run`` command calls :func:`check_before_run`
before the Kedro session starts: no pipeline, no MLflow and no plugin is imported by then, so
``python -m stock_mlops`` (``make run``) refuses in a few seconds. The hook
:class:`stock_mlops.hooks.LudwigPreflightHook` calls :func:`check_catalog_config` for every run
that reads the config, whatever started it (Dagster, a notebook, a run filtered by node). The
first answers only when it can be sure: a pipeline that reads the config, no node filter, a
local file.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any

import yaml
from kedro.io import AbstractDataset, CatalogProtocol
from kedro.io.core import DatasetError, get_protocol_and_path

from stock_mlops.core import columns as C
from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.registry import feature_names
from stock_mlops.pipelines.training.config_validation import (  # the package's pure rules
    FORBIDDEN_INPUTS,
    UNSUPPORTED_KEYS,
    LudwigConfigError,
    _check_inputs,
    _check_output,
    _check_split,
    check_search,
)

logger = logging.getLogger(__name__)

LUDWIG_CONFIG = "ludwig_config"
# The registered pipelines that read ``ludwig_config`` (a test compares this with the registry).
PIPELINES_READING_CONFIG = frozenset({"__default__", "training"})
# ``kedro run`` options that select part of a pipeline: which nodes run then decides whether the
# config is read, and only the hook sees the nodes.
NODE_FILTERS = (
    "node_names",
    "from_nodes",
    "to_nodes",
    "from_inputs",
    "to_outputs",
    "tags",
    "namespaces",
    "only_missing_outputs",
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
    return [*C.PRICE_COLUMNS, *names, C.TARGET_DATE, *C.TARGETS]


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


def check_catalog_config(catalog: CatalogProtocol, feature_engineering: Any) -> None:
    """Loads ``ludwig_config`` from a run's catalog and refuses it if it cannot be valid.

    Args:
        catalog: The run's catalog.
        feature_engineering: The run's raw ``feature_engineering`` parameters.

    Raises:
        LudwigConfigError: The config is missing, not YAML or cannot be valid (named by path).
        ParameterError: ``feature_engineering`` itself is invalid.
    """
    path = dataset_filepath(catalog, LUDWIG_CONFIG)
    try:
        config = catalog.load(LUDWIG_CONFIG)
    except DatasetError as exc:
        raise LudwigConfigError(_unreadable(path, exc)) from None
    _check_loaded(config, path, feature_engineering)


def check_before_run(
    project_path: Path, options: dict[str, Any], settings: Any, pipelines: list[str]
) -> None:
    """The CLI's fast path: refuses an impossible config before the Kedro session starts.

    It reads the configuration with the project's own config loader class and arguments, as the
    session will, and checks the config when the run is sure to read it: one of
    :data:`PIPELINES_READING_CONFIG`, no node filter, a local file. Anything else, and any
    problem with the configuration itself (Kedro reports those when the session starts), is left
    to :class:`stock_mlops.hooks.LudwigPreflightHook`.

    Args:
        project_path: The project folder (relative catalog paths are relative to it).
        options: The ``kedro run`` options as click parsed them.
        settings: The project's Kedro settings.
        pipelines: The requested pipeline names (empty: the default pipeline).

    Raises:
        LudwigConfigError: The config is missing, not YAML or cannot be valid.
        ParameterError: ``feature_engineering`` is invalid.
    """
    if not PIPELINES_READING_CONFIG.intersection(pipelines or ["__default__"]):
        return
    if any(options.get(name) for name in NODE_FILTERS):
        return
    try:
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=str(options.get("conf_source") or project_path / settings.CONF_SOURCE),
            env=options.get("env") or os.environ.get("KEDRO_ENV"),  # as KedroSession.create
            runtime_params=options.get("params") or {},
            **settings.CONFIG_LOADER_ARGS,
        )
        entry = loader["catalog"].get(LUDWIG_CONFIG)
        feature_engineering = loader["parameters"].get("feature_engineering")
    except Exception as exc:  # noqa: BLE001 - the session reports it, with Kedro's own message
        logger.debug("Ludwig pre-flight left to the run: %s", exc)
        return
    filepath = entry.get("filepath") if isinstance(entry, dict) else None
    if not isinstance(filepath, str) or get_protocol_and_path(filepath)[0] != "file":
        return  # a remote config may need the team's credentials, which the session sets
    located = Path(filepath) if Path(filepath).is_absolute() else project_path / filepath
    try:
        dataset = AbstractDataset.from_config(LUDWIG_CONFIG, {**entry, "filepath": str(located)})
    except DatasetError as exc:  # e.g. an unknown dataset type: the catalog reports it
        logger.debug("Ludwig pre-flight left to the run: %s", exc)
        return
    try:
        config = dataset.load()
    except DatasetError as exc:
        raise LudwigConfigError(_unreadable(filepath, exc)) from None
    _check_loaded(config, filepath, feature_engineering)


def _check_loaded(config: Any, path: str, feature_engineering: Any) -> None:
    parsed = FeatureEngineeringParams.parse(feature_engineering, "feature_engineering")
    check_ludwig_config(config, parsed, source=f"Ludwig config {path}")


def dataset_filepath(catalog: CatalogProtocol, name: str) -> str:
    """Where a catalog entry is stored, as its dataset describes it (else its name)."""
    try:
        described = catalog[name]._describe()
    except (KeyError, AttributeError, DatasetError):
        return name
    return str(described.get("filepath") or name)


def _unreadable(path: str, exc: DatasetError) -> str:
    cause = _root_cause(exc)
    if isinstance(cause, FileNotFoundError):
        return (
            f"Ludwig config {path} does not exist (set training.ludwig_config, or ludwig_config "
            "in the environment's globals.yml)"
        )
    if isinstance(cause, yaml.YAMLError):
        detail = " ".join(str(cause).split())
        return f"Ludwig config {path} is not valid YAML: {detail}"
    return f"Ludwig config {path} cannot be read: {' '.join(str(cause or exc).split())}"


def _root_cause(exc: BaseException) -> BaseException | None:
    """The innermost exception a dataset error wraps (Kedro may wrap it more than once)."""
    cause = exc.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause
