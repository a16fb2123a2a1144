"""The monitoring page: checks, windows and both evidently reports in one self-contained file.

Each report is evidently's own standalone page (script and font inlined) in a *closed*
``<iframe srcdoc>``. evidently's ``get_html_str(as_iframe=True)`` cannot be joined: it leaves
its iframe unclosed (the next report becomes fallback text) and its resize script runs before
its own frame exists, so the frames stay 150 px high. Here one script at the end of the body sizes
every frame to its content and follows it when a row is expanded; ``srcdoc`` frames are
same-origin with the page, also when it is opened from disk. Without scripts the frames keep a
usable fixed height.
"""

from __future__ import annotations

import html
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:1.6em;margin:0 0 .4em}h2{margin:1.6em 0 .3em}
p.note{color:#444;max-width:75em}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;margin:12px 0;max-width:75em}
.banner.alert{background:#fde7e9;color:#8a1020}.banner.ok{background:#e6f4ea;color:#1b5e20}
table{border-collapse:collapse;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.SUCCESS{color:#1b7f3b}.FAIL{color:#b00020;font-weight:600}.WARNING{color:#a05a00}
.ERROR{color:#b00020}
iframe.evidently-report{display:block;width:100%;height:80vh;border:1px solid #ddd}
"""

# Sizes every report frame to its document and keeps it sized (rows expand, plots load late).
_FIT_FRAMES = """
<script>
(function () {
  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.body) return;
    var style = frame.contentWindow.getComputedStyle(doc.body);
    var height = Math.ceil(doc.body.getBoundingClientRect().height
      + parseFloat(style.marginTop) + parseFloat(style.marginBottom));
    if (height > 50 && Math.abs(frame.getBoundingClientRect().height - height) > 2) {
      frame.style.height = height + 'px';
    }
  }
  function watch(frame) {
    /* Until the srcdoc has loaded, contentDocument is the initial about:blank: skip it. */
    var doc = frame.contentDocument;
    if (!doc || !doc.body || doc.URL !== 'about:srcdoc' || frame.fittedDocument === doc) return;
    frame.fittedDocument = doc;
    fit(frame);
    new ResizeObserver(function () { fit(frame); }).observe(doc.body);
  }
  document.querySelectorAll('iframe.evidently-report').forEach(function (frame) {
    frame.addEventListener('load', function () { watch(frame); });
    if (frame.contentDocument && frame.contentDocument.readyState === 'complete') watch(frame);
  });
})();
</script>
"""


def monitoring_page(
    *,
    team: str,
    run_date: str,
    alert: dict[str, Any],
    windows: list[dict[str, Any]],
    drift_note: str,
    quality_note: str,
    drift_html: str,
    quality_html: str,
) -> str:
    """The whole page.

    Args:
        team: The team.
        run_date: The run date (ISO).
        alert: The ``monitoring_alert`` document.
        windows: Rows of the windows table (``window``, ``start``, ``end``, ``sessions``,
            ``rows``, ``source``).
        drift_note: What the drift report compares (shown above it).
        quality_note: What the quality report compares.
        drift_html: evidently's standalone page of the drift report.
        quality_html: evidently's standalone page of the quality report.

    Returns:
        The HTML document.
    """
    esc = html.escape
    failed = [c["name"] for c in alert["tests"] if c["critical"] and c["status"] != "SUCCESS"]
    banner = (
        f"<div class='banner alert' id='alert'>Alert: {esc(', '.join(failed))} failed</div>"
        if alert["alert"]
        else "<div class='banner ok' id='alert'>No alert: every critical check passed</div>"
    )
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>Monitoring: team {esc(team)}, {esc(run_date)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            f"<h1>Monitoring: team {esc(team)}, run date {esc(run_date)}</h1>",
            banner,
            _checks_table(alert["tests"]),
            _windows_table(windows),
            "<h2>Feature drift</h2>",
            f"<p class='note'>{esc(drift_note)}</p>",
            _frame("drift-report", "Feature drift report", drift_html),
            "<h2>Prediction quality</h2>",
            f"<p class='note'>{esc(quality_note)}</p>",
            _frame("quality-report", "Prediction quality report", quality_html),
            _FIT_FRAMES,
            "</body></html>",
        ]
    )


def _frame(frame_id: str, title: str, document: str) -> str:
    return (
        f"<iframe class='evidently-report' id='{frame_id}' title='{html.escape(title)}' "
        f'srcdoc="{html.escape(document, quote=True)}"></iframe>'
    )


def _checks_table(tests: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(t['name'])}</td>"
        f"<td class='{html.escape(t['status'])}'>{html.escape(t['status'])}</td>"
        f"<td class='num'>{_fmt(t['value'])}</td>"
        f"<td>{html.escape(t['condition'])} {_fmt(t['threshold'])}</td>"
        f"<td>{html.escape(t['unit'])}</td>"
        f"<td>{'yes' if t['critical'] else 'no'}</td>"
        "</tr>"
        for t in tests
    )
    return (
        "<table id='checks'><thead><tr><th>check</th><th>status</th><th>value</th>"
        "<th>passes when</th><th>unit</th><th>raises the alert</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _windows_table(windows: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(w['window'])}</td><td>{html.escape(str(w['start']))}</td>"
        f"<td>{html.escape(str(w['end']))}</td><td class='num'>{w['sessions']}</td>"
        f"<td class='num'>{w['rows']}</td><td>{html.escape(w['source'])}</td>"
        "</tr>"
        for w in windows
    )
    return (
        "<table id='windows'><thead><tr><th>window</th><th>from</th><th>to</th>"
        "<th>sessions</th><th>rows</th><th>what it is</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))
