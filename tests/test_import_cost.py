"""Pipelines that neither train nor predict never import Ludwig or torch; nor does the package."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import PROJECT

HEAVY = ("ludwig", "torch", "torchvision", "torchaudio", "evidently")

_SCRIPT = """
import json, sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project({project!r})
params = {{"storage_root": {root!r}, "data_ingestion": {{"symbols": "AAPL"}}}}
for name in ("data_ingestion", "feature_engineering"):
    with KedroSession.create(project_path={project!r}, runtime_params=params) as session:
        session.run(pipeline_names=[name])
print("MODULES=" + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def _top_level_modules(code: str, env_extra: dict[str, str] | None = None) -> set[str]:
    import os

    env = {**os.environ, **(env_extra or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


@pytest.mark.slow
def test_data_pipelines_do_not_import_heavy_libraries(tmp_path):
    code = _SCRIPT.format(project=str(PROJECT), root=str(tmp_path / "data"))
    modules = _top_level_modules(code, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    assert "kedro" in modules and "talib" in modules  # the runs really happened
    assert not modules.intersection(HEAVY), sorted(modules.intersection(HEAVY))


def test_package_import_is_light():
    code = (
        "import json, sys\n"
        "from kedro.framework.project import configure_project\n"
        "configure_project('stock_mlops')\n"
        "from stock_mlops.pipeline_registry import register_pipelines\n"
        "import stock_mlops.datasets, stock_mlops.settings\n"
        "register_pipelines()\n"
        "print('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    modules = _top_level_modules(code)
    assert not modules.intersection((*HEAVY, "mlflow", "sklearn", "alpaca")), sorted(
        modules.intersection((*HEAVY, "mlflow", "sklearn", "alpaca"))
    )
