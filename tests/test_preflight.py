"""The Ludwig pre-flight: configs that cannot be valid are refused without importing Ludwig."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from helpers import PROJECT
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from stock_mlops import preflight
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


# ------------------------------------------------------- the CLI's fast path, before the session
def _options(**options):
    """``kedro run`` options as click hands them over (defaults for the rest)."""
    return {"env": None, "conf_source": None, "params": {}, **options}


@pytest.fixture
def project_settings():
    from kedro.framework.project import configure_project, settings

    configure_project("stock_mlops")
    return settings


def _written(tmp_path, config) -> str:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize(
    "pipelines", [["training"], [], ["__default__"], ["data_ingestion", "training"]]
)
def test_a_run_that_trains_is_refused_before_its_session(
    tmp_path, tiny_ludwig_config, project_settings, pipelines
):
    path = _written(tmp_path, {**tiny_ludwig_config, "trainr": {}})
    options = _options(params={"training": {"ludwig_config": path}})
    with pytest.raises(
        LudwigConfigError, match=rf"^Ludwig config {path}: .*did you mean 'trainer'"
    ):
        preflight.check_before_run(PROJECT, options, project_settings, pipelines)


def test_the_fast_path_reads_the_run_s_own_parameters(
    tmp_path, tiny_ludwig_config, project_settings
):
    path = _written(tmp_path, tiny_ludwig_config)  # reads rsi_14
    params = {"training": {"ludwig_config": path}}
    preflight.check_before_run(PROJECT, _options(params=params), project_settings, ["training"])
    shorter = {**params, "feature_engineering": {"indicators": {"rsi_window": 7}}}
    with pytest.raises(LudwigConfigError, match="'rsi_14' is not a column.*did you mean 'rsi_7'"):
        preflight.check_before_run(
            PROJECT, _options(params=shorter), project_settings, ["training"]
        )


def test_the_fast_path_reads_the_environment_s_config(project_settings):
    # conf/red/globals.yml names red's own YAML; a relative path is the project's.
    for env in ("red", "blue", None):
        preflight.check_before_run(PROJECT, _options(env=env), project_settings, [])
    with pytest.raises(LudwigConfigError, match="conf/nowhere.yaml does not exist"):
        preflight.check_before_run(
            PROJECT,
            _options(params={"training": {"ludwig_config": "conf/nowhere.yaml"}}),
            project_settings,
            [],
        )


def test_the_fast_path_reads_the_kedro_env_environment(
    tmp_path, tiny_ludwig_config, project_settings, monkeypatch
):
    """``KEDRO_ENV`` picks the environment when ``--env`` is not given, as in the session."""
    (tmp_path / "base").symlink_to(PROJECT / "conf" / "base")
    (tmp_path / "typo").mkdir()
    (tmp_path / "local").mkdir()  # the default run environment
    config = _written(tmp_path, {**tiny_ludwig_config, "trainr": {}})
    (tmp_path / "typo" / "globals.yml").write_text(yaml.safe_dump({"ludwig_config": config}))
    options = _options(conf_source=str(tmp_path))
    preflight.check_before_run(PROJECT, options, project_settings, ["training"])  # base's own
    monkeypatch.setenv("KEDRO_ENV", "typo")
    with pytest.raises(LudwigConfigError, match="did you mean 'trainer'"):
        preflight.check_before_run(PROJECT, options, project_settings, ["training"])


@pytest.mark.parametrize(
    ("pipelines", "options"),
    [
        (["data_ingestion"], {}),  # does not read the config
        (["monitoring", "competition"], {}),
        (["training"], {"node_names": ("training.record_training_node",)}),  # the hook decides
        (["training"], {"tags": ("x",)}),
        (["training"], {"from_nodes": ("training.train_forecaster_node",)}),
    ],
)
def test_runs_that_may_not_read_the_config_are_left_to_the_hook(
    tmp_path, project_settings, pipelines, options
):
    path = tmp_path / "broken.yaml"
    path.write_text("a: [1,\n")
    params = {"training": {"ludwig_config": str(path)}}
    preflight.check_before_run(
        PROJECT, _options(params=params, **options), project_settings, pipelines
    )


def test_a_remote_config_is_left_to_the_hook(project_settings):
    # Reading it may need the team's credentials, which only the session sets.
    params = {"training": {"ludwig_config": "s3://no-such-bucket/model.yaml"}}
    preflight.check_before_run(PROJECT, _options(params=params), project_settings, ["training"])


@pytest.mark.parametrize(
    "catalog",
    [
        "ludwig_config: [\n",  # not YAML
        "ludwig_config:\n  type: no.SuchDataset\n  filepath: x.yaml\n",  # not a dataset
    ],
)
def test_a_broken_project_configuration_is_left_to_the_session(tmp_path, project_settings, catalog):
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()  # the default run environment
    (tmp_path / "base" / "parameters.yml").write_text("feature_engineering: {}\n")
    (tmp_path / "base" / "catalog.yml").write_text(catalog)  # Kedro reports it, its own way
    preflight.check_before_run(
        PROJECT, _options(conf_source=str(tmp_path)), project_settings, ["training"]
    )


def test_the_pipelines_the_fast_path_checks_are_those_that_read_the_config(project_settings):
    from kedro.framework.project import pipelines

    reading = {name for name, pipeline in pipelines.items() if "ludwig_config" in pipeline.inputs()}
    assert reading == preflight.PIPELINES_READING_CONFIG


def test_make_run_refuses_in_seconds_without_importing_a_pipeline(tmp_path, tiny_ludwig_config):
    """`python -m stock_mlops` (what `make run` runs): refused before any pipeline, MLflow,
    Ludwig or plugin loads. ``-X importtime`` lists every module the process imported."""
    path = _written(tmp_path, {**tiny_ludwig_config, "model": {"type": "mlp"}})
    params = f"storage_root={tmp_path / 'data'},training.ludwig_config={path}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("KEDRO_ENV", None)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "stock_mlops", "--params", params],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    message = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert message and "unknown top-level key(s) ['model']" in message[0]
    assert "stock_mlops.preflight" in imported  # the check did run in this process
    late = sorted(
        m
        for m in imported
        if m.split(".")[0] in {"mlflow", "ludwig", "torch", "kedro_mlflow", "dagster", "scipy"}
        or m.startswith("stock_mlops.pipelines.")
        and m.endswith((".nodes", ".pipeline"))
    )
    assert late == []
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()
