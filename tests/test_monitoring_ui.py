"""`make monitor`: the real `evidently ui` on a team's workspace, its dashboard in Chromium.

Three monitoring runs (three run dates) go into a temporary workspace through the monitoring
nodes and the workspace dataset; the server is started the way `make monitor` starts it
(scripts/monitoring_ui.py, on a free port) and stopped by its process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import PROJECT, free_port
from monitoring_helpers import feature_kinds, monitor

from stock_mlops.datasets import EvidentlyWorkspaceDataset
from stock_mlops.pipelines.monitoring.nodes import workspace_run

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RUN_DATES = ["2023-12-26", "2023-12-27", "2023-12-28"]
# One card per dashboard panel: its title, the lines drawn, one mark per data point, x labels.
_PANELS = """
return Array.from(document.querySelectorAll('div.MuiCard-root')).map(card => {
  const box = card.getBoundingClientRect();
  return {
    title: (card.querySelector('.MuiTypography-h5') || {}).textContent || '',
    width: box.width, height: box.height,
    lines: card.querySelectorAll('.MuiLineElement-root').length,
    points: card.querySelectorAll('.MuiMarkElement-root').length,
    xticks: Array.from(card.querySelectorAll('.MuiChartsAxis-directionX .MuiChartsAxis-tickLabel'))
      .map(t => t.textContent),
  };
}).filter(panel => panel.lines > 0);
"""


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


@pytest.fixture
def evidently_ui(tmp_path, small_features, small_prices):
    """A workspace with three run dates of team red, served by `evidently ui` on loopback."""
    workspace = EvidentlyWorkspaceDataset(path=str(tmp_path / "evidently_workspace"))
    for run_date in RUN_DATES:
        run = monitor(small_features, small_prices, feature_kinds(), run_date)
        workspace.save(workspace_run(run.drift, run.quality, run.drift_window, "red"))
    port = free_port()
    log = (tmp_path / "ui.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT / "scripts" / "monitoring_ui.py"),
            "--workspace",
            str(tmp_path / "evidently_workspace"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole below
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # importing evidently takes most of a minute here
        while True:
            try:
                _get(f"{base}/api/version")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "evidently ui did not answer in 240 s"
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_the_dashboard_shows_each_figure_over_the_run_dates(evidently_ui, browser):
    projects = _get(f"{evidently_ui}/api/projects")
    assert [p["name"] for p in projects] == ["red"]
    project = projects[0]["id"]

    browser.open(f"{evidently_ui}/projects/{project}", wait_css=".MuiMarkElement-root", timeout=120)
    deadline = time.monotonic() + 60
    while (panels := browser.script(_PANELS)) and time.monotonic() < deadline:
        if len(panels) == 3 and all(p["points"] == 3 * p["lines"] for p in panels):
            break
        time.sleep(0.5)
    assert [p["title"] for p in panels] == [
        "Share of drifted features",
        "MAE on next-session return (%)",
        "Directional accuracy",
    ]
    # drift share alone; the model beside the naive forecast; beside always-up: 3 run dates each.
    assert [p["lines"] for p in panels] == [1, 2, 2]
    assert all(p["points"] == 3 * p["lines"] for p in panels)
    assert all(p["width"] > 300 and p["height"] > 200 for p in panels)
    assert any("2023-12-26" in tick for p in panels for tick in p["xticks"])
    assert browser.nonlocal_requests() == []
