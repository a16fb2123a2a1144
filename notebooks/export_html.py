"""Runs a notebook and exports it as one HTML page that opens offline (``make notebook-html``).

    python notebooks/export_html.py                         # explore_outputs.ipynb, executed
    python notebooks/export_html.py --output page.html      # elsewhere
    python notebooks/export_html.py --no-execute run.ipynb  # an executed notebook, as it is

The notebook reads the catalog as it does in JupyterLab (``KEDRO_ENV``,
``STOCK_MLOPS_STORAGE_ROOT`` and ``STOCK_MLOPS_COMPETITION_ROOT`` apply). The page goes to
``build/notebooks/<name>[-<KEDRO_ENV>].html`` unless ``--output`` says otherwise.

Why not plain ``jupyter nbconvert --to html``: its lab template loads require.js and MathJax from
cdnjs, and plotly 5's ``notebook`` renderer draws through require.js, so offline the charts stay
blank. Here each plotly figure (the ``application/vnd.plotly.v1+json`` output JupyterLab draws)
becomes plotly's own self-contained HTML, plotly.js inline once in the first figure, and the
page leaves out the two CDN scripts (the notebook has no formula for MathJax).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
import plotly.io as pio
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor

NOTEBOOKS = Path(__file__).resolve().parent
PROJECT = NOTEBOOKS.parent
DEFAULT_NOTEBOOK = NOTEBOOKS / "explore_outputs.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# nbconvert's JupyterLab page without the two scripts it fetches from cdnjs.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""


class ExportError(Exception):
    """A notebook that cannot be exported, with the reason in one line."""


class OfflinePlotlyPreprocessor(Preprocessor):
    """Replaces each plotly figure output by plotly's self-contained HTML of the figure.

    plotly.js (about 4.6 MB) is inlined in the first figure only; the later ones draw with it.
    """

    def preprocess(self, nb, resources):
        self._plotlyjs_included = False
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).get(PLOTLY_MIME)
            if figure is None:
                continue
            page = pio.to_html(
                figure,
                config=figure.get("config"),
                include_plotlyjs=not self._plotlyjs_included,
                include_mathjax=False,
                full_html=False,
                # The height plotly's notebook renderers give a figure without one.
                default_height=525,
                validate=False,
            )
            self._plotlyjs_included = True
            output["data"] = nbformat.from_dict({"text/html": page})
        return cell, resources


def execute(notebook: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    """Runs every cell in a fresh ``python3`` kernel whose working folder is ``notebooks/``.

    Args:
        notebook: The notebook, changed in place (its outputs).
        timeout: Seconds a cell may run.

    Returns:
        The executed notebook.

    Raises:
        ExportError: A cell failed (its error's name and message).
    """
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        # The message on one line (a dataset's error often spans two).
        reason = " ".join(str(exc.evalue).split())
        raise ExportError(f"a cell failed: {exc.ename}: {reason}") from exc
    return notebook


def to_offline_html(notebook: nbformat.NotebookNode) -> str:
    """The executed notebook as one HTML page that fetches nothing from the network.

    Args:
        notebook: An executed notebook (not changed).

    Returns:
        The page.
    """
    exporter = HTMLExporter(template_name="lab")
    exporter.raw_template = OFFLINE_TEMPLATE
    exporter.register_preprocessor(OfflinePlotlyPreprocessor(), enabled=True)
    page, _ = exporter.from_notebook_node(nbformat.from_dict(notebook))
    return page


def default_output(notebook: Path) -> Path:
    """``build/notebooks/<name>[-<KEDRO_ENV>].html`` (build/ is git-ignored)."""
    env = os.environ.get("KEDRO_ENV")
    return PROJECT / "build" / "notebooks" / f"{notebook.stem}{'-' + env if env else ''}.html"


def main(argv: list[str] | None = None) -> int:
    """Executes (unless ``--no-execute``) and exports; one ``error:`` line when it cannot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--output", type=Path, default=None, help="the HTML page to write")
    parser.add_argument(
        "--no-execute", action="store_true", help="export the outputs the notebook holds"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds a cell may run")
    args = parser.parse_args(argv)
    try:
        notebook = nbformat.read(args.notebook, as_version=4)
    except FileNotFoundError:
        sys.stderr.write(f"error: no notebook at {args.notebook}\n")
        return 2
    output = args.output or default_output(args.notebook)
    try:
        if not args.no_execute:
            execute(notebook, args.timeout)
        page = to_offline_html(notebook)
    except ExportError as exc:
        sys.stderr.write(f"error: {args.notebook.name}: {exc}\n")
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    sys.stdout.write(f"{output} ({len(page.encode()) / 1e6:.1f} MB; opens offline)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
