"""The Ludwig pre-flight: configs that cannot be valid are refused without importing Ludwig."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from helpers import PROJECT
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.hooks import LudwigPreflightHook
from stock_mlops.pipelines.feature_engineering.nodes import build_features
from stock_mlops.pipelines.training.config_validation import LudwigConfigError
from stock_mlops.pipelines.training.pipeline import create_pipeline as training_pipeline
from stock_mlops.preflight import LUDWIG_TOP_LEVEL_KEYS, check_ludwig_config, feature_columns

DEFAULTS = FeatureEngineeringParams()


@pytest.mark.parametrize("path", sorted(PROJECT.glob("conf/*/ludwig/model.yaml")), ids=str)
def test_every_shipped_config_passes(path):
    check_ludwig_config(yaml.safe_load(path.read_text()), DEFAULTS, str(path))


def test_the_columns_are_the_ones_the_feature_pipeline_builds(small_prices):
    for params in (DEFAULTS, FeatureEngineeringParams.parse({"calendar_features": False})):
        built = build_features(small_prices, params)
        assert sorted(feature_columns(params)) == sorted(built.columns)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"model": {"type": "mlp"}},
            "unknown top-level key(s) ['model'] (did you mean 'model_type'?)",
        ),
        ({"trainr": {"epochs": 3}}, "(did you mean 'trainer'?)"),
        ({"hyperopt": {}}, "hyperopt.executor.type: 'None' cannot run here; use 'optuna'"),
        (
            {"input_features": [{"name": "rsi_41", "type": "number"}]},
            "'rsi_41' is not a column of features (did you mean 'rsi_14'?)",
        ),
        (
            {"input_features": [{"name": "target_close_1d", "type": "number"}]},
            "is a target or date column",
        ),
        ({"output_features": [{"name": "close", "type": "number"}]}, "is not a target column"),
        ({"preprocessing": {"split": {"type": "random"}}}, "look-ahead leakage"),
    ],
)
def test_configs_that_cannot_be_valid_are_refused(tiny_ludwig_config, change, fragment):
    with pytest.raises(LudwigConfigError) as refused:
        check_ludwig_config({**tiny_ludwig_config, **change}, DEFAULTS, "Ludwig config x.yaml")
    assert fragment in str(refused.value)
    assert str(refused.value).startswith("Ludwig config x.yaml: ")


def test_windows_from_the_parameters_decide_the_columns(tiny_ludwig_config):
    params = FeatureEngineeringParams.parse({"indicators": {"rsi_window": 7}})
    with pytest.raises(LudwigConfigError, match="'rsi_14' is not a column.*did you mean 'rsi_7'"):
        check_ludwig_config(tiny_ludwig_config, params)


@pytest.mark.parametrize("config", [None, {}, ["input_features"], "text"])
def test_an_empty_or_non_mapping_config_is_refused(config):
    with pytest.raises(LudwigConfigError, match="empty or not a mapping"):
        check_ludwig_config(config, DEFAULTS)


def test_the_check_does_not_import_ludwig(tiny_ludwig_config):
    code = (
        "import sys, yaml\n"
        "from stock_mlops.core.params import FeatureEngineeringParams\n"
        "from stock_mlops.preflight import check_ludwig_config\n"
        "check_ludwig_config(yaml.safe_load(sys.stdin.read()), FeatureEngineeringParams())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ludwig', 'torch')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=yaml.safe_dump(tiny_ludwig_config),
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT,
    )
    assert done.stdout.strip() == "[]"


def _catalog(tmp_path, text: str) -> DataCatalog:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    return DataCatalog.from_config(
        {"ludwig_config": {"type": "yaml.YAMLDataset", "filepath": str(path)}}
    )


class _Context:
    params = {"feature_engineering": {}}


def test_the_hook_refuses_before_a_training_run_starts(tmp_path):
    hook = LudwigPreflightHook()
    hook.after_context_created(_Context())
    with pytest.raises(LudwigConfigError, match=r"model.yaml is not valid YAML: .*line 2"):
        hook.before_pipeline_run(training_pipeline(), _catalog(tmp_path, "a: [1,\nb: : x\n"))
    missing = DataCatalog.from_config(
        {"ludwig_config": {"type": "yaml.YAMLDataset", "filepath": str(tmp_path / "no.yaml")}}
    )
    with pytest.raises(LudwigConfigError, match="no.yaml does not exist"):
        hook.before_pipeline_run(training_pipeline(), missing)
    with pytest.raises(LudwigConfigError, match="'model_typ'"):
        hook.before_pipeline_run(training_pipeline(), _catalog(tmp_path, "model_typ: ecd\n"))


def test_the_hook_ignores_runs_that_do_not_train(tmp_path):
    hook = LudwigPreflightHook()
    hook.after_context_created(_Context())
    hook.before_pipeline_run(Pipeline([]), _catalog(tmp_path, "a: [1,\n"))  # not read at all


@pytest.mark.slow
def test_the_known_top_level_keys_are_ludwig_s():
    from ludwig.config_validation.validation import get_schema

    assert set(get_schema("ecd")["properties"]) == LUDWIG_TOP_LEVEL_KEYS
