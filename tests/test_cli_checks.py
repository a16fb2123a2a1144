"""The project CLI's own checks, in-process (the real command is run in tests/test_cli.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT

from stock_mlops.cli import (
    ConfigurationError,
    check_environment,
    check_pipelines,
    registered_pipelines,
    run,
)


def test_every_pipeline_package_is_a_known_name():
    folders = {
        p.name
        for p in (PROJECT / "src" / "stock_mlops" / "pipelines").iterdir()
        if (p / "pipeline.py").is_file()
    }
    assert set(registered_pipelines()) == {*folders, "__default__"}


def test_unknown_names_are_refused_with_the_closest_one(monkeypatch):
    monkeypatch.chdir(PROJECT)
    check_pipelines(["training", "__default__"])
    with pytest.raises(ConfigurationError, match="did you mean 'backtest'"):
        check_pipelines(["training", "backtets"])
    with pytest.raises(
        ConfigurationError,
        match=r"unknown environment 'rde': there is no folder conf/rde; did you mean 'red'\?",
    ):
        check_environment("rde", None)
    check_environment("red", None)
    check_environment(None, None)


def test_an_environment_under_another_conf_source(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    (tmp_path / "base").mkdir()
    (tmp_path / "gold").mkdir()
    check_environment("gold", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"environments: base, gold\)"):
        check_environment("red", str(tmp_path))
    assert ConfigurationError("x").exit_code == 2


def test_run_keeps_every_option_of_kedro_s_run():
    from kedro.framework.cli.project import run as kedro_run

    assert [p.name for p in run.params] == [p.name for p in kedro_run.params]
    assert {"pipelines", "env", "params", "runner", "tags", "conf_source"} <= {
        p.name for p in run.params
    }


def test_the_cli_puts_its_interpreter_first_on_path_for_plugins():
    """`kedro mlflow ui` starts `mlflow` by name: it must be this environment's."""
    code = "import shutil, stock_mlops.cli, sys, pathlib\nprint(shutil.which('mlflow'))\n"
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert Path(done.stdout.strip().splitlines()[-1]) == Path(sys.executable).parent / "mlflow"
