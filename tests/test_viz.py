"""`kedro viz build` renders the graph with its layers (no layer cycle disables them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PROJECT

pytestmark = pytest.mark.slow


def test_viz_build_writes_a_layered_graph(tmp_path):
    kedro = Path(sys.executable).with_name("kedro")
    # `kedro viz build` writes build/ in the working directory: build a copy of the project's
    # configuration in a temporary folder, never in the project tree.
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "src").mkdir()  # Kedro wants the folder; the package comes from PYTHONPATH
    for name in ("pyproject.toml", ".telemetry"):
        if (PROJECT / name).exists():
            shutil.copy(PROJECT / name, project / name)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [str(kedro), "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "circular" not in output.lower(), "a layer cycle disables the layer view"
    graph = json.loads((project / "build" / "api" / "main").read_text())
    layers = graph["layers"]
    assert set(layers) == {
        "raw",
        "primary",
        "feature",
        "model_input",
        "models",
        "model_output",
        "reporting",
    }
    assert layers[0] == "raw" and layers[-1] == "reporting"
    assert layers.index("primary") < layers.index("feature") < layers.index("models")
    layered = {n["name"]: n["layer"] for n in graph["nodes"] if n.get("layer")}
    assert layered["prices"] == "primary" and layered["features"] == "feature"
    names = {p["id"] for p in graph["pipelines"]}
    assert {"__default__", "competition", "backtest"} <= names
