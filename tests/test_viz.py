"""`make viz`: the kedro-viz site with previews, built into a temporary copy of the project
(never the project's own build/) and served on loopback the way `make viz` serves it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import PROJECT, free_port

from stock_mlops.core.params import FeatureEngineeringParams
from stock_mlops.pipelines.feature_engineering.nodes import build_features, describe_features

pytestmark = pytest.mark.slow
FLOWCHART_NODE = "svg.pipeline-flowchart__graph g.pipeline-node"


@pytest.fixture(scope="module")
def viz_project(tmp_path_factory, small_prices):
    """A copy of the project's configuration whose storage root holds real data, built once."""
    root = tmp_path_factory.mktemp("viz")
    project = root / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT / name, project / name)
    for env in ("base", "red", "blue"):
        shutil.copytree(PROJECT / "conf" / env, project / "conf" / env)
    (project / "src").mkdir()  # the package itself comes from this checkout (PYTHONPATH)
    data = root / "data"
    (project / "conf" / "local").mkdir()
    (project / "conf" / "local" / "globals.yml").write_text(f"storage_root: {data}\n")
    (data / "03_primary").mkdir(parents=True)
    (data / "04_feature").mkdir()
    small_prices.to_parquet(data / "03_primary" / "prices.parquet")
    build_features(small_prices, FeatureEngineeringParams()).to_parquet(
        data / "04_feature" / "features.parquet"
    )
    (data / "04_feature" / "feature_kinds.json").write_text(
        json.dumps(describe_features(FeatureEngineeringParams()))
    )
    project_build = PROJECT / "build"
    before = project_build.stat().st_mtime_ns if project_build.exists() else None
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    result = subprocess.run(
        [sys.executable, str(PROJECT / "scripts" / "viz_build.py"), "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    after = project_build.stat().st_mtime_ns if project_build.exists() else None
    assert before == after, "the test wrote into the project's build/"
    return project, env, output


def test_viz_build_writes_a_layered_graph(viz_project):
    project, _, output = viz_project
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


def test_wrapped_datasets_have_previews(viz_project):
    project, _, _ = viz_project
    build = project / "build" / "api"
    ids = {n["name"]: n["id"] for n in json.loads((build / "main").read_text())["nodes"]}
    # prices and features are AtomicDataset(pandas.ParquetDataset); feature_kinds wraps JSON.
    previews = {
        name: json.loads((build / "nodes" / ids[name]).read_text())
        for name in ("prices", "features", "feature_kinds")
    }
    assert previews["prices"]["preview_type"] == "TablePreview"
    assert previews["prices"]["preview"]["columns"][:3] == ["symbol", "date", "open"]
    assert len(previews["prices"]["preview"]["data"]) >= 3
    assert "rsi_14" in previews["features"]["preview"]["columns"]
    assert previews["feature_kinds"]["preview_type"] == "JSONPreview"
    assert "oscillator" in json.dumps(previews["feature_kinds"]["preview"])


@pytest.mark.browser
def test_the_served_site_draws_the_flowchart_offline(viz_project, browser):
    project, env, _ = viz_project
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT / "scripts" / "viz_build.py"),
            "--project",
            str(project),
            "--no-build",
            "--serve",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()  # noqa: S310
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.2)
        browser.open(f"http://127.0.0.1:{port}/", wait_css=FLOWCHART_NODE, timeout=120)
        nodes = browser.assert_visible(FLOWCHART_NODE, min_count=10)
        labels = {n["text"] for n in nodes}
        assert {"prices", "features"} <= {label.strip() for label in labels}
        assert browser.nonlocal_requests() == []
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
