"""The pieces the jobs add to kedro-dagster's translation, each on its own (no Kedro session)."""

from __future__ import annotations

import time

import pytest
from helpers import PROJECT
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline

from stock_mlops import settings
from stock_mlops.core.params import ParameterError, TradingParams
from stock_mlops.datasets.run_info import RunInfoDataset
from stock_mlops.orchestration import kedro_jobs


def _decide(trading: TradingParams, direction_band: float, run_date: str | None) -> dict:
    return {
        "kind": type(trading).__name__,
        "threshold": trading.threshold,
        "band": direction_band,
        "run_date": run_date,
    }


@pytest.fixture(scope="module")
def raw_params() -> dict:
    """team red's parameters as configured (what the op config is built from)."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT / "conf"), env="red", **settings.CONFIG_LOADER_ARGS
    )
    return loader["parameters"]


@pytest.fixture
def checking(raw_params) -> kedro_jobs.ParameterCheckingNode:
    node = Pipeline(
        [
            Node(
                _decide,
                inputs={
                    "trading": "params:trading",
                    "direction_band": "params:feature_engineering.targets.direction_band",
                    "run_date": "params:run_date",
                },
                outputs="decision",
                name="decide_node",
            )
        ],
        namespace="trading",
        parameters={
            "params:trading",
            "params:feature_engineering.targets.direction_band",
            "params:run_date",
        },
    ).nodes[0]
    return kedro_jobs.ParameterCheckingNode.of(node, raw_params)


def _plain(raw_params: dict, **overrides) -> dict:
    """The node's inputs as kedro-dagster hands them over: plain values from the op config."""
    values = {
        "params:trading": dict(raw_params["trading"]),
        "params:feature_engineering.targets.direction_band": 0.001,
        "params:run_date": None,
    }
    return values | overrides


def test_the_checking_node_is_the_same_node(checking):
    assert checking.name == "trading.decide_node"
    assert checking.inputs == [
        "params:trading",
        "params:feature_engineering.targets.direction_band",
        "params:run_date",
    ]
    assert checking.outputs == ["trading.decision"]


def test_plain_values_reach_the_node_as_its_typed_parameters(checking, raw_params):
    trading = dict(raw_params["trading"]) | {"threshold": 0.02}
    inputs = _plain(raw_params, **{"params:trading": trading, "params:run_date": "2023-07-03"})
    decision = checking.run(inputs)["trading.decision"]
    assert decision == {
        "kind": "TradingParams",
        "threshold": 0.02,
        "band": 0.001,
        "run_date": "2023-07-03",
    }


def test_a_run_date_that_is_not_a_session_is_refused_as_at_kedro_run(checking, raw_params):
    with pytest.raises(ParameterError, match=r"run_date 2023-07-04 \(Tuesday\) is not an NYSE"):
        checking.run(_plain(raw_params, **{"params:run_date": "2023-07-04"}))


def test_an_override_the_project_refuses_is_named(checking, raw_params):
    trading = dict(raw_params["trading"]) | {"treshold": 0.01}
    with pytest.raises(ParameterError, match="trading.treshold"):
        checking.run(_plain(raw_params, **{"params:trading": trading}))
    with pytest.raises(ParameterError, match="trading.threshold"):
        checking.run(_plain(raw_params, **{"params:trading": {"threshold": -1.0}}))


def test_run_date_ops_are_found_in_the_pipeline():
    def use(*_args):
        return 1

    pipeline = Pipeline(
        [
            Node(use, ["params:run_date", "params:x"], "a", name="one_node"),
            Node(use, ["a"], "b", name="two_node"),
            Node(use, ["b", "params:run_date"], "c", name="three_node"),
        ],
        namespace="daily",
        inputs=set(),
        parameters={"params:run_date", "params:x"},
    )
    assert kedro_jobs.run_date_ops(pipeline) == ["daily__one_node", "daily__three_node"]
    config = kedro_jobs.session_config(kedro_jobs.run_date_ops(pipeline))
    assert config.get_run_config_for_partition_key("2023-07-05") == {
        "ops": {
            "daily__one_node": {"config": {"params:run_date": "2023-07-05"}},
            "daily__three_node": {"config": {"params:run_date": "2023-07-05"}},
        }
    }


def test_each_run_gets_its_own_save_version_and_run_facts(tmp_path):
    from kedro.io.core import Version  # noqa: PLC0415

    from stock_mlops.datasets.models import PyfuncModelDataset  # noqa: PLC0415

    models = PyfuncModelDataset(filepath=str(tmp_path / "forecaster"), version=Version(None, "v1"))
    facts = RunInfoDataset()
    catalog = DataCatalog({"forecaster": models, "run_info": facts, "other": MemoryDataset(1)})
    pipeline = Pipeline([Node(lambda *_: None, ["run_info", "other"], "forecaster", name="n")])
    first = facts.load()

    kedro_jobs.FreshRunHook().before_pipeline_run({}, pipeline, catalog)
    second_save = models._get_save_path()
    time.sleep(0.01)  # versions are millisecond timestamps
    kedro_jobs.FreshRunHook().before_pipeline_run({}, pipeline, catalog)

    assert "v1" not in str(second_save)
    assert models._get_save_path() != second_save  # every run its own version
    assert facts.load()["run_id"] != first["run_id"]  # run_info describes the new run
    assert catalog.load("other") == 1  # other datasets are left alone
