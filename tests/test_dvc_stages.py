"""dvc.yaml and what it needs from the project: the team list, persisted outputs, quoted dates,
and the stage guard that puts a failed stage's previous outputs back (no Kedro run here; the real
`dvc repro` is in tests/integration/test_dvc_repro.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import PROJECT

from stock_mlops import dvc_stages
from stock_mlops.dvc_stages import COMMAND, DvcStageGuardHook, StageGuard, TeamListError
from stock_mlops.pipeline_registry import DAILY_LOOP

DVC = str(Path(sys.executable).parent / "dvc")


def _dvc_yaml() -> dict:
    return yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))


def test_the_dvc_team_list_matches_the_team_folders():
    reasons = dvc_stages.stale_reasons(PROJECT)
    assert not reasons, f"{'; '.join(reasons)}: run `{COMMAND}` (make dvc-teams) and commit"


def test_every_team_stage_runs_its_kedro_pipeline_and_every_output_persists():
    stages = _dvc_yaml()["stages"]
    assert list(stages) == [*DAILY_LOOP, "competition"]
    for name in DAILY_LOOP:
        assert stages[name]["foreach"] == "${teams}"
        assert stages[name]["do"]["cmd"] == f"kedro run --pipelines {name} --env ${{key}}"
    assert stages["competition"]["cmd"].startswith("kedro run --pipelines competition --env base")
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                ((path, options),) = entry.items()
                # DVC deletes an output that is not persisted before the stage runs.
                assert options and options.get("persist") is True, f"{name}: {path}"


def missing_plot_datasets() -> list[str]:
    """The plot datasets other branches add that this checkout's catalog lacks, with the branch."""
    catalog = yaml.safe_load((PROJECT / "conf" / "base" / "catalog.yml").read_text())
    missing = []
    if "backtest_equity_plot" not in catalog:
        missing.append("dataset backtest_equity_plot (branch stats)")
    if not str(catalog.get("prediction_outcomes", {}).get("filepath", "")).endswith(".csv"):
        missing.append("dataset prediction_outcomes as CSV (branch mon)")
    return missing


def test_the_plots_are_declared_on_the_equity_and_prediction_tables():
    missing = missing_plot_datasets()
    if missing:
        pytest.skip(f"not in main yet: {', '.join(missing)}")
    stages = _dvc_yaml()["stages"]
    backtest = {k: v for e in stages["backtest"]["do"]["plots"] for k, v in e.items()}
    equity = backtest["${item.storage_root}/08_reporting/backtest_equity_plot.csv"]
    assert equity["x"] == "date" and equity["template"] == "equity_drawdown"
    template = json.loads((PROJECT / ".dvc" / "plots" / "equity_drawdown.json").read_text())
    folded = [chart["transform"][0]["fold"] for chart in template["vconcat"]]
    assert folded == [["equity", "benchmark_equity"], ["drawdown", "benchmark_drawdown"]]
    monitoring = {k: v for e in stages["monitoring"]["do"]["plots"] for k, v in e.items()}
    outcomes = monitoring["${item.storage_root}/07_model_output/prediction_outcomes.csv"]
    assert (outcomes["x"], outcomes["y"]) == ("actual_close", "predicted_close")


def _copy_project(target: Path) -> Path:
    for name in ("pyproject.toml", "dvc.yaml", ".dvcignore"):
        shutil.copy2(PROJECT / name, target / name)
    for folder in ("conf", "dvc", ".dvc/plots"):
        shutil.copytree(PROJECT / folder, target / folder)
    shutil.copy2(PROJECT / ".dvc" / "config", target / ".dvc" / "config")
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def test_a_new_team_is_one_folder_and_one_command(tmp_path, monkeypatch):
    project = _copy_project(tmp_path)
    green = project / "conf" / "green"
    green.mkdir()
    (green / "globals.yml").write_text(
        "team: green\nstorage_root: data/green\nludwig_config: conf/base/ludwig/model.yaml\n"
    )
    monkeypatch.chdir(project)
    stale = dvc_stages.stale_reasons(project)
    assert "dvc/teams.yaml does not match the team folders under conf/" in stale
    assert "conf/green/parameters_training.yml is missing" in stale

    written = dvc_stages.write_team_list(project)
    assert "dvc/teams.yaml" in written and "conf/green/parameters_trading.yml" in written
    assert dvc_stages.stale_reasons(project) == []
    teams = yaml.safe_load((project / "dvc" / "teams.yaml").read_text())
    assert teams["teams"]["green"] == {
        "storage_root": "data/green",
        "ludwig_config": "conf/base/ludwig/model.yaml",
    }
    # A placeholder is an empty override, as Kedro and the team-file check read it.
    assert yaml.safe_load((green / "parameters_trading.yml").read_text()) == {}

    listed = subprocess.run(
        [DVC, "stage", "list", "--name-only"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": str(Path(sys.executable).parent), "DVC_NO_ANALYTICS": "1"},
    ).stdout.split()
    assert {f"{name}@green" for name in DAILY_LOOP} <= set(listed)
    assert {f"{name}@red" for name in DAILY_LOOP} <= set(listed)


@pytest.mark.parametrize(
    ("root", "reason"),
    [
        ("s3://bucket/green", "storage_root 's3://bucket/green' is a URL"),
        ("../elsewhere", "storage_root '../elsewhere' is outside the project"),
    ],
)
def test_a_team_the_stages_cannot_version_is_refused_with_the_reason(
    tmp_path, root, reason, monkeypatch, capsys
):
    project = _copy_project(tmp_path)
    (project / "conf" / "green").mkdir()
    (project / "conf" / "green" / "globals.yml").write_text(f"team: green\nstorage_root: {root}\n")
    monkeypatch.chdir(project)
    assert dvc_stages.main(["--check"]) == 2
    assert capsys.readouterr().err.startswith(f"error: team 'green': {reason}")
    with pytest.raises(TeamListError, match="green"):
        dvc_stages.collect_team_list(project)


def _dates(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _dates(value, (*path, str(key)))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from _dates(value, (*path, str(index)))
    elif isinstance(tree, dt.date):
        yield ".".join(path)


def test_no_parameter_file_holds_a_yaml_date():
    # DVC records parameters as JSON and fails on a date after the stage has run.
    found = [
        f"{path.relative_to(PROJECT)}: {key}"
        for path in sorted((PROJECT / "conf").rglob("*.yml"))
        for key in _dates(yaml.safe_load(path.read_text()) or {})
    ]
    assert not found, f"quote these dates: {found}"


# ------------------------------------------------------------------------------ stage guard
def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()  # noqa: S324
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".dvc" not in p.parts
    }


@pytest.fixture
def stage_outputs(tmp_path, monkeypatch):
    """A DVC root whose dvc.lock records three outputs of `trading@red` (two exist)."""
    (tmp_path / "data" / "broker" / "snapshots").mkdir(parents=True)
    (tmp_path / "data" / "orders.parquet").write_bytes(b"orders v1")
    (tmp_path / "data" / "broker" / "snapshots" / "1.json").write_text('{"cash": 1}')
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "trading@red": {
                        "outs": [
                            {"path": "data/orders.parquet", "md5": "x"},
                            {"path": "data/broker", "md5": "y.dir"},
                            {"path": "data/report.csv", "md5": "z"},
                        ]
                    }
                },
            }
        )
    )
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "trading@red")
    return tmp_path


def _damage(root: Path) -> None:
    (root / "data" / "orders.parquet").write_bytes(b"orders v2, half")
    (root / "data" / "broker" / "snapshots" / "2.json").write_text('{"cash": 2}')
    (root / "data" / "report.csv").write_text("written by the failed run")


def test_a_failed_run_gets_its_previous_outputs_back(stage_outputs):
    before = _tree(stage_outputs)
    hook = DvcStageGuardHook()
    hook.before_pipeline_run(run_params={})
    _damage(stage_outputs)
    hook.on_pipeline_error(error=RuntimeError("boom"), run_params={})
    assert _tree(stage_outputs) == before
    assert not list((stage_outputs / ".dvc" / "tmp").rglob("*.json"))


def test_a_successful_run_keeps_its_new_outputs_and_drops_the_copy(stage_outputs):
    hook = DvcStageGuardHook()
    hook.before_pipeline_run(run_params={})
    _damage(stage_outputs)
    after = _tree(stage_outputs)
    hook.after_pipeline_run(run_params={})
    assert _tree(stage_outputs) == after
    assert not list((stage_outputs / ".dvc" / "tmp").rglob("*.json"))


def test_a_copy_left_by_a_killed_run_is_put_back_before_the_next_run(stage_outputs):
    before = _tree(stage_outputs)
    StageGuard.from_environment().backup()
    _damage(stage_outputs)  # ...and the process is killed: no hook ran after this
    guard = StageGuard.from_environment()
    guard.backup()
    assert _tree(stage_outputs) == before
    manifest = json.loads((guard.folder / "outputs.json").read_text())
    assert manifest["existed"] == ["data/orders.parquet", "data/broker"]


def test_outside_dvc_the_guard_does_nothing(stage_outputs, monkeypatch):
    monkeypatch.delenv("DVC_STAGE")
    hook = DvcStageGuardHook()
    hook.before_pipeline_run(run_params={})
    hook.on_pipeline_error(error=RuntimeError("boom"), run_params={})
    assert not (stage_outputs / ".dvc").exists()
