"""The notebook reads a run's outputs through the catalog (executed with a real kernel)."""

from __future__ import annotations

import nbformat
import pytest
from helpers import PROJECT
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def test_notebook_runs_against_a_storage_root(loop_run, tracking, monkeypatch):
    monkeypatch.setenv("STOCK_MLOPS_STORAGE_ROOT", str(loop_run.root))
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    notebook = nbformat.read(PROJECT / "notebooks" / "explore_outputs.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(PROJECT / "notebooks")}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "AAPL" in text and "naive_last_close" in text and "total_return" in text
