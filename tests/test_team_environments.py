"""Team environments hold only differences from base, and merge softly into it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PROJECT
from kedro.config import OmegaConfigLoader

from stock_mlops import settings

CONF = PROJECT / "conf"
# Teams are discovered, as the competition discovers them: every conf/<env> naming a team.
TEAMS = tuple(settings.team_storage_roots())


def _leaf_paths(tree: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(tree, dict) and tree:
        paths: set[tuple[str, ...]] = set()
        for key, value in tree.items():
            paths |= _leaf_paths(value, (*prefix, str(key)))
        return paths
    return {prefix}


def _merged_base(kind: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted((CONF / "base").glob(f"{kind}*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def _exists(tree: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _override_files(team: str) -> list[Path]:
    # Ludwig configs are whole models, not overrides of base values.
    return [p for p in sorted((CONF / team).rglob("*.yml")) if "ludwig" not in p.parts]


@pytest.mark.parametrize("team", TEAMS)
def test_team_files_only_override_keys_that_exist_in_base(team):
    overrides = _override_files(team)
    assert overrides, f"conf/{team} has no override files"
    for path in overrides:
        kind = path.stem.split("_")[0]  # parameters_trading -> parameters
        base = _merged_base(kind)
        assert base, f"{path.relative_to(PROJECT)}: no conf/base/{kind}*.yml to override"
        team_values = yaml.safe_load(path.read_text()) or {}
        unknown = [".".join(p) for p in _leaf_paths(team_values) if not _exists(base, p)]
        assert not unknown, f"{path.relative_to(PROJECT)} sets keys absent from base: {unknown}"


def test_the_check_catches_a_misspelt_key(tmp_path):
    base = {"trading": {"threshold": 0.005, "risk": {"kill_switch": False}}}
    typo = {"trading": {"treshold": 0.004}}
    assert [p for p in _leaf_paths(typo) if not _exists(base, p)] == [("trading", "treshold")]


def _loader(env: str) -> OmegaConfigLoader:
    return OmegaConfigLoader(
        conf_source=str(CONF),
        env=env,
        **{k: v for k, v in settings.CONFIG_LOADER_ARGS.items() if k != "config_patterns"},
        config_patterns=settings.CONFIG_LOADER_ARGS["config_patterns"],
    )


def test_red_and_blue_are_the_shipped_teams():
    assert set(TEAMS) == {"red", "blue"}


@pytest.mark.parametrize("team", TEAMS)
def test_team_parameters_merge_softly_into_base(team):
    params = _loader(team)["parameters"]
    base = _loader("base")["parameters"]
    own = yaml.safe_load((CONF / team / "parameters_trading.yml").read_text())
    assert params["team"] == team
    assert params["trading"]["threshold"] == own["trading"]["threshold"]
    assert params["trading"]["threshold"] != base["trading"]["threshold"]
    # Untouched siblings of the overridden leaf survive the merge.
    assert params["trading"]["broker"] == base["trading"]["broker"]
    assert params["trading"]["risk"] == base["trading"]["risk"]
    assert params["training"]["ludwig_config"] == f"conf/{team}/ludwig/model.yaml"
    assert (PROJECT / params["training"]["ludwig_config"]).is_file()
    assert params["storage_root"] == f"data/{team}"


@pytest.mark.parametrize("team", TEAMS)
def test_team_mlflow_experiment_and_storage_root(team):
    loader = _loader(team)
    assert loader["mlflow"]["tracking"]["experiment"]["name"] == f"stock_mlops_{team}"
    catalog = loader["catalog"]
    assert catalog["prices"]["filepath"] == f"data/{team}/03_primary/prices.parquet"
    assert catalog["registered_forecaster"]["model_name"] == f"stock_mlops_{team}"


def test_adding_a_team_is_one_new_folder(tmp_path, monkeypatch):
    """A copy of conf/ plus conf/green/globals.yml: green joins the competition with its own
    storage root, MLflow experiment and registered model, and nothing else is edited."""
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    for env in ("base", "red", "blue"):
        shutil.copytree(CONF / env, project / "conf" / env)
    (project / "pyproject.toml").write_text("[tool.kedro]\npackage_name = 'stock_mlops'\n")
    green = project / "conf" / "green"
    green.mkdir()
    (green / "globals.yml").write_text("team: green\nstorage_root: data/green\n")
    monkeypatch.chdir(project)

    loader = OmegaConfigLoader(
        conf_source=str(project / "conf"),
        env="green",
        **{k: v for k, v in settings.CONFIG_LOADER_ARGS.items() if k != "config_patterns"},
        config_patterns=settings.CONFIG_LOADER_ARGS["config_patterns"],
    )
    params = loader["parameters"]
    assert params["competition"]["teams"] == {
        "blue": "data/blue",
        "green": "data/green",
        "red": "data/red",
    }
    assert params["team"] == "green" and params["storage_root"] == "data/green"
    assert loader["catalog"]["prices"]["filepath"] == "data/green/03_primary/prices.parquet"
    assert loader["mlflow"]["tracking"]["experiment"]["name"] == "stock_mlops_green"
