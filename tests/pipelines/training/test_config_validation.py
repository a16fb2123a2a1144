"""The team's Ludwig config is checked before anything trains."""

from __future__ import annotations

import copy

import pytest
import yaml
from helpers import PROJECT

from stock_mlops.pipelines.training.config_validation import (
    LudwigConfigError,
    validate_ludwig_config,
)


@pytest.fixture
def columns(small_features):
    return list(small_features.columns)


@pytest.mark.parametrize("env", ["base", "red", "blue"])
def test_shipped_configs_are_valid(env, columns):
    config = yaml.safe_load((PROJECT / "conf" / env / "ludwig" / "model.yaml").read_text())
    validated = validate_ludwig_config(config, columns, "per_symbol")
    assert validated["output_features"][0]["name"] == "target_return_1d"


def test_the_three_teams_train_different_architectures():
    combiners = {
        env: yaml.safe_load((PROJECT / "conf" / env / "ludwig" / "model.yaml").read_text())[
            "combiner"
        ]
        for env in ("base", "red", "blue")
    }
    assert combiners["red"]["type"] == "transformer"
    assert combiners["blue"] != combiners["base"]


def test_pooled_scope_adds_symbol_input(tiny_ludwig_config, columns):
    validated = validate_ludwig_config(tiny_ludwig_config, columns, "pooled")
    assert {"name": "symbol", "type": "category"} in validated["input_features"]
    assert "symbol" not in [f["name"] for f in tiny_ludwig_config["input_features"]]


def _broken(config, mutate):
    config = copy.deepcopy(config)
    mutate(config)
    return config


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        # The predecessor's silently dropped block.
        (lambda c: c.update(model={"type": "lstm", "layers": 2}), "model"),
        (lambda c: c["input_features"].append({"name": "rsi_99", "type": "number"}), "rsi_99"),
        (
            lambda c: c["input_features"].append({"name": "target_close_1d", "type": "number"}),
            "target_close_1d",
        ),
        (lambda c: c["output_features"][0].update(name="close"), "output_features[0].name"),
        (lambda c: c["output_features"][0].update(type="category"), "output_features[0].type"),
        (
            lambda c: c.update(preprocessing={"split": {"type": "random"}}),
            "preprocessing.split.type",
        ),
        (lambda c: c["trainer"].update(epochz=3), "epochz"),
        (lambda c: c.update(hyperopt={}), "hyperopt"),
    ],
)
def test_invalid_configs_fail_naming_the_key(tiny_ludwig_config, columns, mutate, named):
    with pytest.raises(LudwigConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        validate_ludwig_config(_broken(tiny_ludwig_config, mutate), columns, "per_symbol")


def test_empty_config_is_rejected(columns):
    with pytest.raises(LudwigConfigError, match="empty"):
        validate_ludwig_config({}, columns, "per_symbol")
