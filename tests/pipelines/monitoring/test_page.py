"""The monitoring page as a person sees it: opened from disk in headless Chromium, offline."""

from __future__ import annotations

import pytest

from stock_mlops.pipelines.monitoring.nodes import render_monitoring_report

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# What each report frame shows: rows of the drift table (column names), and the plots drawn
# with their x-axis titles.
_INSIDE_FRAMES = """
const out = {};
document.querySelectorAll('iframe.evidently-report').forEach(frame => {
  const doc = frame.contentDocument;
  const visible = el => {
    const r = el.getBoundingClientRect();
    return r.width > 50 && r.height > 20;
  };
  out[frame.id] = {
    table_rows: Array.from(doc.querySelectorAll('table tbody tr')).filter(visible)
      .map(tr => tr.innerText.split('\\t').map(s => s.trim()).filter(Boolean)[0]),
    plots: Array.from(doc.querySelectorAll('.js-plotly-plot')).filter(visible).map(plot => ({
      xtitles: Array.from(plot.querySelectorAll('.xtitle')).map(t => t.textContent),
      xticks: plot.querySelectorAll('.xtick').length,
      points: plot.querySelectorAll('.scatterlayer path.js-line, .scatterlayer .point').length,
    })),
  };
});
return out;
"""


def test_monitoring_report_renders_both_reports_at_full_height(monitoring_run, browser, tmp_path):
    run = monitoring_run
    page = tmp_path / "monitoring_report.html"
    page.write_text(
        render_monitoring_report(
            run.drift, run.quality, run.alert, run.drift_window, run.quality_window, "red"
        ),
        encoding="utf-8",
    )

    browser.open(page.as_uri(), wait_css="table#checks")
    frames = browser.wait_frames(min_height=300, timeout=120)
    assert len(frames) == 2
    browser.assert_frames(min_height=300, tolerance=10)  # every frame shows its whole report
    assert all(f["height"] >= f["content_height"] - 10 for f in frames)
    assert frames[1]["height"] > 1500  # the quality report is long: it was not cut at 150 px

    checks = browser.assert_visible("table#checks tbody tr", min_count=len(run.alert["tests"]))
    assert checks[0]["text"].startswith("drift_share")
    browser.assert_visible("#alert")
    browser.assert_visible("table#windows tbody tr", min_count=4)

    inside = browser.script(_INSIDE_FRAMES)
    # The drift table lists every monitored feature, and nothing else.
    assert sorted(inside["drift-report"]["table_rows"]) == sorted(run.drift_window["columns"])
    # The quality report's error-over-time plot is drawn over dates, not over a row index.
    dated = [p for p in inside["quality-report"]["plots"] if "date (day)" in p["xtitles"]]
    assert dated and dated[0]["xticks"] >= 3 and dated[0]["points"] >= 1
    assert not any(
        "Index binned" in t for p in inside["quality-report"]["plots"] for t in p["xtitles"]
    )

    assert browser.nonlocal_requests() == []
    assert browser.console_errors() == []
