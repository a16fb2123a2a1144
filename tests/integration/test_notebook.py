"""The notebook, executed with a real kernel against a whole-loop run, then exported with
`notebooks/export_html.py` (what `make notebook-html` runs) and opened the way a person opens the
page: in a real browser, offline."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from helpers import PROJECT, run_kedro

from stock_mlops.datasets import AppendOnlyParquetDataset

NOTEBOOK = PROJECT / "notebooks" / "explore_outputs.ipynb"
EXPORTER = PROJECT / "notebooks" / "export_html.py"
# Each chart's cell tag, and the traces it must draw.
CHARTS = {
    "features-chart": 4,
    "backtest-chart": 2,
    "monitoring-chart": 2,
    "account-chart": 3,
    "leaderboard-chart": 2,
}
TABLES = ("prices", "evaluation", "backtest", "monitoring-summary", "monitoring-tests", "orders")
TABLES += ("order-events", "account", "leaderboard")

# Every plotly figure of the page: the cell tags around it, its box, its SVG layers, its traces
# (as plotly.js drew them) and the points of its first trace.
_FIGURES_JS = """
return [...document.querySelectorAll('.plotly-graph-div')].map(gd => {
  const cell = gd.closest('.jp-Cell');
  const box = gd.getBoundingClientRect();
  return {
    tags: [...cell.classList].filter(c => c.startsWith('celltag_')).map(c => c.slice(8)),
    width: box.width, height: box.height,
    svgs: [...gd.querySelectorAll('.main-svg')].map(s => s.getBoundingClientRect().height),
    traces: (gd._fullData || []).length,
    drawn: gd.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
    points: gd.data && gd.data.length ? (gd.data[0].x || []).length : 0,
  };
});
"""


def _exporter():
    spec = importlib.util.spec_from_file_location("export_html", EXPORTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Explored:
    team: Path
    board_root: Path
    notebook: nbformat.NotebookNode
    page: Path


def _order_on_aapl(root: Path) -> None:
    """The loop's champion is the naive forecaster: it predicts no change, so the loop's trading
    run orders nothing. One more prediction (+2% on AAPL for the same session) in the copy's log
    makes the real trading pipeline decide, submit and record an order on the local broker."""
    log = AppendOnlyParquetDataset(
        filepath=str(root / "07_model_output/predictions.parquet"),
        key_columns=["team", "symbol", "target_date", "model_version"],
    )
    row = log.load().query("symbol == 'AAPL'").copy()
    row["model_version"] = "hand-written/1"
    row["prediction"] = row["last_close"] * 1.02
    row["predicted_return"] = 0.02
    row["predicted_direction"] = "up"
    row["created_at"] = row["created_at"] + pd.Timedelta(seconds=1)
    log.save(row)


@pytest.fixture(scope="module")
def explored(loop_run, tmp_path_factory) -> Explored:
    """A copy of the loop's storage root with one order traded and a competition run, the
    notebook executed against them, and its page exported."""
    base = tmp_path_factory.mktemp("notebook")
    team, board_root = base / "base", base / "competition"
    shutil.copytree(loop_run.root, team)  # the shared loop run stays as it is
    _order_on_aapl(team)
    exporter = _exporter()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", loop_run.tracking_uri)
        run_kedro("trading", params={"storage_root": str(team)})
        # The competition of the one team the loop ran, under its own root as in production.
        run_kedro(
            "competition",
            params={"storage_root": str(board_root), "competition": {"teams": {"base": str(team)}}},
        )
        patch.setenv("STOCK_MLOPS_STORAGE_ROOT", str(team))
        patch.setenv("STOCK_MLOPS_COMPETITION_ROOT", str(board_root))
        patch.delenv("KEDRO_ENV", raising=False)
        exporter.execute(notebook)
    executed, page = base / "explore_outputs.ipynb", base / "explore_outputs.html"
    nbformat.write(notebook, executed)
    # What `make notebook-html` runs, on the executed notebook (in-process: no second import).
    assert exporter.main(["--no-execute", str(executed), "--output", str(page)]) == 0
    return Explored(team, board_root, notebook, page)


def _cell(notebook: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (cell,) = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    return cell


def _tables(notebook: nbformat.NotebookNode, tag: str) -> list[pd.DataFrame]:
    """The HTML tables a cell displayed, as data frames."""
    outputs = _cell(notebook, tag).outputs
    pages = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # Kedro's log lines are HTML outputs too, without a table.
    return [t for page in pages if "<table" in page for t in pd.read_html(io.StringIO(page))]


def _printed(notebook: nbformat.NotebookNode, tag: str) -> str:
    outputs = _cell(notebook, tag).outputs
    return "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.slow
def test_every_cell_reads_its_dataset_through_the_catalog(explored):
    notebook = explored.notebook
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in errors if o.output_type == "error"]

    (prices,) = _tables(notebook, "prices")
    stored = pd.read_parquet(explored.team / "03_primary/prices.parquet")
    assert (
        prices.set_index("symbol")["count"].to_dict() == stored["symbol"].value_counts().to_dict()
    )

    (evaluation,) = _tables(notebook, "evaluation")
    metrics = json.loads((explored.team / "08_reporting/evaluation_metrics.json").read_text())
    evaluation = evaluation.set_index(evaluation.columns[0])
    assert set(evaluation.index) == set(metrics) >= {"naive_last_close", "ludwig"}
    for model, values in metrics.items():
        for column in ("mae_return", "directional_accuracy", "directional_base_rate"):
            expected, shown = values.get(column), evaluation.at[model, column]
            # The naive forecast predicts no move: it makes no directional call.
            assert pd.isna(shown) if expected is None else shown == pytest.approx(expected, 1e-4)

    (backtest,) = _tables(notebook, "backtest")
    backtest = backtest.set_index(backtest.columns[0])
    figures = json.loads((explored.team / "08_reporting/backtest_metrics.json").read_text())
    assert backtest.at["Sharpe", "strategy"] == f"{figures['sharpe']:.3f}"
    assert backtest.at["Sharpe 95% low", "strategy"] == f"{figures['sharpe_ci_low']:.3f}"
    assert backtest.at["costs (share of starting equity)", "strategy"] == (
        f"{figures['cost_drag']:+.1%}"
    )

    alert = json.loads((explored.team / "08_reporting/monitoring_alert.json").read_text())
    (tests,) = _tables(notebook, "monitoring-tests")
    assert tests["name"].tolist() == [t["name"] for t in alert["tests"]]
    assert f"alert {alert['alert']}" in _printed(notebook, "monitoring-summary")
    (summary,) = _tables(notebook, "monitoring-summary")
    assert summary.set_index(summary.columns[0]).at["MAE on return", "baseline is"] == (
        "naive (no change)"
    )


@pytest.mark.slow
def test_orders_account_and_leaderboard_show_what_the_runs_wrote(explored):
    notebook = explored.notebook
    (orders,) = _tables(notebook, "orders")
    assert orders["symbol"].tolist() == ["AAPL"]
    assert orders["history"].tolist() == ["approved → submitted → accepted"]
    assert "ordered buy" in _printed(notebook, "orders")
    events, reconciliation = _tables(notebook, "order-events")
    assert events["event"].tolist() == ["decided", "submitted", "accepted"]
    assert reconciliation["symbol"].tolist() == ["AAPL"]

    account, open_orders = _tables(notebook, "account")
    assert account["equity"].tolist() == [100_000.0]
    assert open_orders["symbol"].tolist() == ["AAPL"]
    assert "no position held" in _printed(notebook, "account")

    (board,) = _tables(notebook, "leaderboard")
    stored = pd.read_csv(explored.board_root / "08_reporting/leaderboard.csv")
    assert board["team"].tolist() == stored["team"].tolist() == ["base"]
    row = stored.iloc[0]
    assert board["Sharpe"].tolist() == [round(row["sharpe"], 2)]
    assert board["95% interval"].tolist() == [
        f"[{row['sharpe_low']:.2f}, {row['sharpe_high']:.2f}]"
    ]
    assert board["return"].tolist() == [f"{row['total_return']:+.1%}"]
    assert board["always up"].tolist() == [f"{row['directional_base_rate']:.1%}"]
    assert "no leader-against-team comparison" in _printed(notebook, "leaderboard-chart")


@pytest.mark.slow
@pytest.mark.browser
def test_the_exported_page_draws_every_chart_offline(explored, browser):
    browser.open(explored.page.as_uri(), wait_css=".celltag_leaderboard-chart .main-svg")
    figures = {tuple(f["tags"]): f for f in browser.script(_FIGURES_JS)}
    assert sorted(figures) == sorted((tag,) for tag in CHARTS)
    for (tag,), figure in figures.items():
        assert figure["width"] > 600 and figure["height"] >= 400, (tag, figure)
        assert figure["svgs"] and min(figure["svgs"]) >= 400, (tag, figure)
        assert figure["traces"] == figure["drawn"] == CHARTS[tag], (tag, figure)
        assert figure["points"] >= 1, (tag, figure)
    assert figures[("features-chart",)]["points"] == 250
    for tag in TABLES:
        browser.assert_visible(f".celltag_{tag} .jp-OutputArea-output table", min_height=40)
    board = browser.assert_visible(".celltag_leaderboard table", min_height=40)[0]
    assert "base" in board["text"] and "[" in board["text"]
    assert browser.console_errors() == []
    assert browser.nonlocal_requests() == []
    # plotly.js (its banner names the version) is inlined once, not once per chart (4.6 MB each).
    assert explored.page.read_text().count("plotly.js v2.") == 1


def test_the_export_names_a_missing_notebook(tmp_path, capsys):
    missing = tmp_path / "absent.ipynb"
    assert _exporter().main([str(missing), "--output", str(tmp_path / "page.html")]) == 2
    assert capsys.readouterr().err == f"error: no notebook at {missing}\n"
    assert not (tmp_path / "page.html").exists()


def test_the_committed_notebook_carries_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
