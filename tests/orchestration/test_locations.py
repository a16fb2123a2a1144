"""Code locations come from conf/ (a team is a folder), and the workspace lists them."""

from __future__ import annotations

import shutil

import pytest
import yaml
from helpers import PROJECT

from stock_mlops import definitions
from stock_mlops.orchestration import locations
from stock_mlops.orchestration.__main__ import main


def test_every_team_environment_and_the_competition_is_a_location():
    assert locations.team_locations() == ["blue", "red"]
    # The competition loads the environment `kedro run --pipelines competition` uses.
    assert locations.locations() == {"blue": "blue", "red": "red", "competition": "local"}


def test_the_workspace_names_one_python_module_location_each():
    entries = yaml.safe_load(locations.workspace_yaml(python="/opt/venv/bin/python"))["load_from"]
    modules = [entry["python_module"] for entry in entries]
    assert [m["location_name"] for m in modules] == ["blue", "red", "competition"]
    assert [m["attribute"] for m in modules] == ["blue", "red", "competition"]
    assert {m["module_name"] for m in modules} == {"stock_mlops.definitions"}
    assert {m["working_directory"] for m in modules} == {str(PROJECT)}
    assert {m["executable_path"] for m in modules} == {"/opt/venv/bin/python"}


def test_a_new_team_folder_is_a_new_location_without_any_edit(tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "pyproject.toml").write_text("[tool.kedro]\npackage_name = 'stock_mlops'\n")
    (project / "conf" / "green").mkdir()
    (project / "conf" / "green" / "globals.yml").write_text("team: green\nstorage_root: data/g\n")
    # A folder without a team (notes, a personal env) is not a location.
    (project / "conf" / "scratch").mkdir()
    (project / "conf" / "scratch" / "globals.yml").write_text("storage_root: /tmp/x\n")
    monkeypatch.chdir(project)

    out = project / ".dagster" / "workspace.yaml"
    assert main(["workspace", "--output", str(out)]) == 0
    entries = yaml.safe_load(out.read_text())["load_from"]
    assert [e["python_module"]["location_name"] for e in entries] == [
        "blue",
        "green",
        "red",
        "competition",
    ]
    assert {e["python_module"]["working_directory"] for e in entries} == {str(project)}
    assert "executable_path" not in entries[0]["python_module"]  # Dagster's own interpreter


def test_runtime_params_parse_as_kedro_run_params():
    text = "storage_root=s3://bucket/red, data_ingestion.symbols=AAPL MSFT,trading.threshold=0.01"
    assert locations.runtime_params(text) == {
        "storage_root": "s3://bucket/red",
        "data_ingestion": {"symbols": "AAPL MSFT"},
        "trading": {"threshold": 0.01},
    }
    assert locations.runtime_params("") == {}


def test_runtime_params_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(locations.PARAMS_ENV_VAR, "run_date=2023-07-03")
    assert locations.runtime_params() == {"run_date": "2023-07-03"}
    monkeypatch.delenv(locations.PARAMS_ENV_VAR)
    assert locations.runtime_params() == {}


def test_a_malformed_runtime_param_is_named():
    with pytest.raises(
        locations.OrchestrationConfigError, match="'symbols AAPL' must be key=value"
    ):
        locations.runtime_params("storage_root=/tmp/x,symbols AAPL")


def test_definitions_expose_one_definitions_to_autodiscovery_and_refuse_unknown_names():
    assert "defs" in dir(definitions)
    assert not {"red", "blue", "competition"} & set(dir(definitions))
    with pytest.raises(AttributeError, match="no attribute 'green'"):
        definitions.green  # noqa: B018 - the attribute lookup is the test


def test_an_unknown_location_is_refused_with_the_known_ones():
    from stock_mlops.orchestration.code_location import build_definitions  # noqa: PLC0415

    with pytest.raises(locations.OrchestrationConfigError, match="blue, red, competition"):
        build_definitions("green", runtime_params={})
