"""The leaderboard page: ranked key figures first, the luck beside them, details below.

One self-contained HTML file (inline CSS, plotly.js inline), readable offline and without a
horizontal scroll bar at 1400 px: the key table has ten fixed columns whose cells wrap, the
details table has one column per team.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from stock_mlops.core.universes import UNIVERSES

STYLE = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
  margin: 0; background: #fafbfc; line-height: 1.4; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
p, li { max-width: 100%; overflow-wrap: anywhere; }
.lead { color: #444; margin: 0 0 16px; }
.notice { background: #fff8c5; border: 1px solid #d4a72c; padding: 10px 14px; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; background: #fff; }
th, td { padding: 7px 8px; border-bottom: 1px solid #e1e4e8; vertical-align: top;
  overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
th { background: #f0f3f6; text-align: right; font-weight: 600; font-size: 0.9em; }
td { text-align: right; }
td.name, th.name { text-align: left; }
table.key td:nth-child(2) { font-weight: 600; }
table.key th:first-child, table.key td:first-child { width: 72px; text-align: center; }
table.key th { white-space: normal; } table.key th:first-child { white-space: nowrap; }
table.key td:first-child { font-size: 1.25em; font-weight: 700; }
small, .sub { display: block; color: #57606a; font-size: 0.8em; font-weight: 400; }
.good { color: #1a7f37; } .bad { color: #cf222e; }
table.details td:first-child { text-align: left; color: #333; }
table.details tr.group td { background: #f6f8fa; font-weight: 600; text-align: left; }
dl { display: grid; grid-template-columns: 220px 1fr; gap: 4px 16px; }
dt { font-weight: 600; } dd { margin: 0; }
.chart { width: 100%; background: #fff; border: 1px solid #e1e4e8; margin-top: 8px; }
"""


# ---------------------------------------------------------------------------- formatting
def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def pct(value: Any, signed: bool = False, digits: int = 1) -> str:
    """A fraction as a percentage (``0.199`` -> ``19.9%``); a dash when unknown."""
    if not _finite(value):
        return "–"
    text = f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"
    return text.replace("-", "−")


def num(value: Any, digits: int = 2, signed: bool = False) -> str:
    """A plain number with ``digits`` decimals (minus sign typeset); a dash when unknown."""
    if not _finite(value):
        return "–"
    return (f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}").replace("-", "−")


def count(value: Any) -> str:
    """A count without decimals, with thousands separators (``2639.0`` -> ``2,639``)."""
    return f"{int(round(value)):,}" if _finite(value) else "–"


def interval(low: Any, high: Any, digits: int = 2) -> str:
    """``[low, high]`` or nothing when unknown."""
    if not (_finite(low) and _finite(high)):
        return ""
    return f"[{num(low, digits)}, {num(high, digits)}]"


def _cell(main: str, sub: str = "", css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    below = f"<small>{html.escape(sub)}</small>" if sub else ""
    return f"<td{klass}>{html.escape(main)}{below}</td>"


# --------------------------------------------------------------------------------- page
def render_page(
    leaderboard: pd.DataFrame,
    comparisons: pd.DataFrame,
    team_outputs: dict[str, dict[str, Any]],
) -> str:
    """The whole page (see the module docstring)."""
    ran = leaderboard[leaderboard["has_outputs"].astype(bool)] if len(leaderboard) else leaderboard
    basis = leaderboard["ranked_on"].iloc[0] if len(ran) else "backtest"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>stock-mlops leaderboard</title><style>{STYLE}</style></head><body><main>",
        "<h1>Leaderboard</h1>",
        f"<p class='lead'>{html.escape(_lead(leaderboard, basis))}</p>",
    ]
    if ran.empty:
        parts.append(_empty_notice(leaderboard))
    parts += [_key_table(leaderboard), "<h2>Is the leader ahead by more than luck?</h2>"]
    parts.append(_verdicts(comparisons, leaderboard))
    parts.append(_universes(leaderboard))
    parts.append(_charts(team_outputs))
    parts += ["<h2>Details</h2>", _details(leaderboard), _reading_guide()]
    parts.append("</main></body></html>")
    return "".join(parts)


def _lead(board: pd.DataFrame, basis: str) -> str:
    teams = len(board)
    how = (
        "on their paper-trading record (the broker account's daily equity)"
        if basis == "paper trading"
        else "on the backtest of their out-of-sample predictions (no team has a paper-trading "
        "record long enough yet)"
    )
    return (
        f"{teams} team{'s' if teams != 1 else ''}, ranked {how} by Sharpe ratio. Forecast "
        "figures compare every team on the same symbols and dates. Beside each Sharpe ratio: its "
        "95% interval, the share of shuffled predictions that did as well, and the deflated "
        "Sharpe ratio, which discounts every configuration the team tried."
    )


def _empty_notice(board: pd.DataFrame) -> str:
    teams = ", ".join(board["team"]) if len(board) else "none"
    commands = "".join(
        f"<code>.venv/bin/kedro run --env {html.escape(t)}</code>, " for t in board["team"]
    )
    return (
        "<p class='notice'>No team has results yet (teams: "
        f"{html.escape(teams)}). Run each team's daily loop, then the competition again: "
        f"{commands}<code>.venv/bin/kedro run --pipelines competition</code>.</p>"
    )


KEY_HEADERS = [
    ("Rank", ""),
    ("Team", "ranked on"),
    ("Sharpe", "95% interval"),
    ("Return", "total"),
    ("Max drawdown", ""),
    ("Buy and hold", "return; strategy minus it"),
    ("Luck", "shuffles doing as well"),
    ("Deflated Sharpe", "trials counted"),
    ("MAE on return", "naive on the same rows"),
    ("Direction hit rate", "always up; skill"),
]


def _key_table(board: pd.DataFrame) -> str:
    head = "".join(
        f"<th class='{'name' if i == 1 else ''}'>{html.escape(a)}"
        + (f"<small>{html.escape(b)}</small>" if b else "")
        + "</th>"
        for i, (a, b) in enumerate(KEY_HEADERS)
    )
    body = []
    for row in board.to_dict("records"):
        excess = row.get("excess_total_return")
        luck = row.get("permutation_share")
        body.append(
            "<tr>"
            + _cell(str(row["rank"]))
            + _cell(str(row["team"]), f"{row['ranked_on']}, {row['universe']}", "name")
            + _cell(num(row.get("sharpe")), interval(row.get("sharpe_low"), row.get("sharpe_high")))
            + _cell(pct(row.get("total_return"), signed=True), f"{count(row.get('sessions'))} days")
            + _cell(pct(row.get("max_drawdown")))
            + _cell(
                pct(row.get("benchmark_total_return"), signed=True),
                f"{pct(excess, signed=True)} against it" if _finite(excess) else "",
                "bad" if _finite(excess) and excess < 0 else "",
            )
            + _cell(
                pct(luck, digits=0) if _finite(luck) else "–",
                f"of {count(row.get('backtest_permutation_samples'))} shuffles"
                if _finite(luck)
                else "no permutation test",
            )
            + _cell(num(row.get("dsr")), _trials(row.get("trials")))
            + _cell(
                pct(row.get("mae_return"), digits=2),
                f"naive {pct(row.get('naive_mae_return'), digits=2)}",
            )
            + _cell(
                pct(row.get("directional_accuracy")),
                f"always up {pct(row.get('directional_base_rate'))}; skill "
                f"{num(row.get('directional_skill'), 3, signed=True)}",
            )
            + "</tr>"
        )
    return (
        f"<table class='key' id='leaderboard'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _trials(value: Any) -> str:
    if not _finite(value):
        return "trials unknown"
    return f"{count(value)} trial{'' if round(value) == 1 else 's'}"


def _verdicts(comparisons: pd.DataFrame, board: pd.DataFrame) -> str:
    if comparisons.empty:
        reason = (
            "only one team is on the board"
            if len(board) < 2
            else "no backtests to compare (fewer than two teams have a backtest or a "
            "paper-trading record on the leader's basis)"
        )
        return f"<p>No comparison: {reason}.</p>"
    family = len(comparisons)
    items = []
    for r in comparisons.itertuples():
        verdict = "a lead larger than luck" if r.clear_lead else "not distinguishable from luck"
        items.append(
            f"<li><b>{html.escape(r.leader)} vs {html.escape(r.challenger)}</b>: on "
            f"{count(r.days)} common {html.escape(r.basis)} days the Sharpe difference is "
            f"{num(r.sharpe_difference)} (95% interval {num(r.ci95_low)} to {num(r.ci95_high)}); "
            f"{html.escape(r.leader)} is ahead in {pct(r.share_leader_ahead, digits=0)} of "
            f"resamples; one-sided p = {num(r.p_value, 3)}"
            + (
                f", Holm-adjusted over {family} comparisons {num(r.p_holm, 3)}"
                if family > 1
                else ""
            )
            + f": {verdict}.</li>"
        )
    return (
        f"<ul>{''.join(items)}</ul><p class='sub'>Paired {html.escape(_block_text(comparisons))} "
        "of the common days: both teams are resampled on the same days, so a shared market move "
        "does not count as a difference. The leader is the maximum of the board, so with more "
        "than one challenger the p-values are Holm-adjusted; a share of resamples ahead is not "
        "a p-value.</p>"
    )


def _block_text(comparisons: pd.DataFrame) -> str:
    blocks = comparisons["block"].dropna()
    if blocks.empty:
        return "block bootstrap"
    return f"block bootstrap (mean block {blocks.mean():.1f} days, Politis-White or as set)"


def _universes(board: pd.DataFrame) -> str:
    names = list(dict.fromkeys(board["universe"])) if len(board) else []
    items = []
    for name in names:
        universe = UNIVERSES.get(name)
        if universe is None:
            items.append(
                f"<li><b>{html.escape(name)}</b>: prices from outside the bundled universes; "
                "the selection is whatever the source and the symbol list chose.</li>"
            )
            continue
        items.append(
            f"<li><b>{universe.name}</b> ({', '.join(universe.symbols)}; {universe.first_date}.."
            f"{universe.last_date}; {html.escape(universe.adjustment)}): "
            f"{html.escape(universe.selection_bias)}.</li>"
        )
    body = "".join(items) or "<li>no team's prices were found.</li>"
    return f"<h2>The universe and its selection bias</h2><ul>{body}</ul>"


# A team named after a colour is drawn in it (team red in red); others take plotly's cycle.
TEAM_COLOURS = {
    "red": "#d62728",
    "blue": "#1f77b4",
    "green": "#2ca02c",
    "orange": "#ff7f0e",
    "purple": "#9467bd",
    "yellow": "#bcbd22",
    "brown": "#8c564b",
    "pink": "#e377c2",
}


def _line(team: str) -> dict[str, str]:
    colour = TEAM_COLOURS.get(team.lower())
    return {"color": colour} if colour else {}


def _charts(team_outputs: dict[str, dict[str, Any]]) -> str:
    import plotly.graph_objects as go  # noqa: PLC0415 - only this page needs plotly

    figures = []
    backtest = go.Figure()
    benchmark = None
    for team, outputs in team_outputs.items():
        equity = outputs.get("backtest_equity")
        if equity is not None and len(equity):
            backtest.add_scatter(x=equity["date"], y=equity["equity"], name=team, line=_line(team))
            benchmark = equity if benchmark is None else benchmark
    if benchmark is not None:
        backtest.add_scatter(
            x=benchmark["date"],
            y=benchmark["benchmark_equity"],
            name="buy and hold",
            line={"dash": "dot", "color": "#7f7f7f"},
        )
        backtest.update_layout(title="Backtest equity by team", yaxis_title="equity")
        figures.append(backtest)
    paper = go.Figure()
    for team, outputs in team_outputs.items():
        history = outputs.get("account_history")
        if history is not None and len(history) and "equity" in history:
            paper.add_scatter(x=history["date"], y=history["equity"], name=team, line=_line(team))
    if paper.data:
        paper.update_layout(title="Paper-trading equity by team", yaxis_title="equity")
        figures.append(paper)
    if not figures:
        return "<h2>Equity</h2><p>No backtest or paper-trading equity yet.</p>"
    blocks = [
        figure.to_html(
            full_html=False,
            include_plotlyjs=i == 0,
            default_width="100%",
            default_height="440px",
            config={"displaylogo": False, "responsive": True},
        )
        for i, figure in enumerate(figures)
    ]
    return "<h2>Equity</h2>" + "".join(f"<div class='chart'>{b}</div>" for b in blocks)


DETAILS = [
    ("Backtest (out-of-sample predictions through the real trading rule)", None),
    ("period", "backtest_period", "text"),
    ("days", "backtest_sessions", "count"),
    ("total return", "backtest_total_return", "signed"),
    ("return before costs", "backtest_gross_total_return", "signed"),
    ("cost drag (commission + slippage)", "backtest_cost_drag", "pct"),
    ("Sharpe ratio", "backtest_sharpe", "num"),
    ("Sharpe 95% interval, low", "backtest_sharpe_low", "num"),
    ("Sharpe 95% interval, high", "backtest_sharpe_high", "num"),
    ("deflated Sharpe ratio", "backtest_dsr", "num"),
    ("max drawdown", "backtest_max_drawdown", "pct"),
    ("buy and hold return", "backtest_benchmark_total_return", "signed"),
    ("buy and hold Sharpe", "backtest_benchmark_sharpe", "num"),
    ("shuffles doing as well", "backtest_permutation_share", "pct0"),
    ("permutation p-value", "backtest_permutation_p_value", "num3"),
    ("shuffles", "backtest_permutation_samples", "count"),
    ("fills", "backtest_n_trades", "count"),
    ("Paper trading (the broker account)", None),
    ("days", "live_sessions", "count"),
    ("total return", "live_total_return", "signed"),
    ("Sharpe ratio", "live_sharpe", "num"),
    ("Sharpe 95% interval, low", "live_sharpe_low", "num"),
    ("Sharpe 95% interval, high", "live_sharpe_high", "num"),
    ("deflated Sharpe ratio", "live_dsr", "num"),
    ("max drawdown", "live_max_drawdown", "pct"),
    ("buy and hold over the same days", "live_benchmark_total_return", "signed"),
    ("Live forecasts (predictions met by realised closes, common rows)", None),
    ("rows", "live_n", "count"),
    ("MAE (price)", "live_mae", "num"),
    ("MAE on return", "live_mae_return", "pct2"),
    ("naive MAE on return", "live_naive_mae_return", "pct2"),
    ("direction hit rate", "live_directional_accuracy", "pct"),
    (
        "hit rate 95% interval (dates)",
        ("live_directional_accuracy_low", "live_directional_accuracy_high"),
        "range",
    ),
    ("always-up base rate", "live_directional_base_rate", "pct"),
    ("skill over always up", "live_directional_skill", "num3s"),
    ("pooled IC", "live_information_coefficient", "num3s"),
    ("mean daily IC (t)", ("live_daily_ic_mean", "live_daily_ic_t"), "ic"),
    ("Out-of-sample test forecasts (common rows)", None),
    ("rows", "oos_n", "count"),
    ("MAE (price)", "oos_mae", "num"),
    ("MAE on return", "oos_mae_return", "pct2"),
    ("naive MAE on return", "oos_naive_mae_return", "pct2"),
    ("direction hit rate", "oos_directional_accuracy", "pct"),
    (
        "hit rate 95% interval (dates)",
        ("oos_directional_accuracy_low", "oos_directional_accuracy_high"),
        "range",
    ),
    ("always-up base rate", "oos_directional_base_rate", "pct"),
    ("skill over always up", "oos_directional_skill", "num3s"),
    ("pooled IC", "oos_information_coefficient", "num3s"),
    (
        "IC 95% interval (dates)",
        ("oos_information_coefficient_low", "oos_information_coefficient_high"),
        "range3",
    ),
    ("mean daily IC (t)", ("oos_daily_ic_mean", "oos_daily_ic_t"), "ic"),
    ("The predecessor's scoring", None),
    ("MAE (price)", "legacy_mae", "num"),
    ("hit rate", "legacy_hit_rate", "pct"),
    ("days", "legacy_days", "count"),
    ("Provenance", None),
    ("trials (MLflow)", "trials_note", "text"),
    ("universe", "universe", "text"),
    ("storage root", "storage_root", "text"),
]


def _detail_value(row: dict[str, Any], key: Any, kind: str) -> str:
    if kind == "range":
        low, high = (row.get(k) for k in key)
        return f"{pct(low)} – {pct(high)}" if _finite(low) and _finite(high) else "–"
    if kind == "range3":
        low, high = (row.get(k) for k in key)
        return interval(low, high, 3) or "–"
    if kind == "ic":
        mean, t = (row.get(k) for k in key)
        return f"{num(mean, 3, signed=True)} (t {num(t, 2)})" if _finite(mean) else "–"
    value = row.get(key)
    formats = {
        "count": count,
        "signed": lambda v: pct(v, signed=True),
        "pct": pct,
        "pct0": lambda v: pct(v, digits=0),
        "pct2": lambda v: pct(v, digits=2),
        "num": num,
        "num3": lambda v: num(v, 3),
        "num3s": lambda v: num(v, 3, signed=True),
        "text": lambda v: "–" if v is None or v == "" or pd.isna(v) else str(v),
    }
    return formats[kind](value)


def _details(board: pd.DataFrame) -> str:
    rows = board.to_dict("records")
    head = "<th class='name'>figure</th>" + "".join(
        f"<th>{html.escape(str(r['team']))}</th>" for r in rows
    )
    body = []
    for entry in DETAILS:
        if entry[1] is None:
            body.append(f"<tr class='group'><td colspan='{len(rows) + 1}'>{entry[0]}</td></tr>")
            continue
        label, key, kind = entry
        cells = "".join(f"<td>{html.escape(_detail_value(r, key, kind))}</td>" for r in rows)
        body.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return (
        f"<table class='details' id='details'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _reading_guide() -> str:
    terms = [
        (
            "Sharpe ratio",
            "annualised mean daily return over its standard deviation, in excess "
            "of competition.risk_free_rate; the interval comes from arch's block bootstrap of "
            "days (Politis-White block length), and a year and a half of days leaves it about "
            "±1.6 wide.",
        ),
        (
            "Luck (shuffles)",
            "the backtest's permutation test: the same rule on each symbol's "
            "predicted returns shuffled across dates; the share of shuffles whose Sharpe is at "
            "least the model's. Near 50% means the model's timing and choice of stock add "
            "nothing to what the rule earns at random in the same market.",
        ),
        (
            "Deflated Sharpe",
            "the probability that the true Sharpe ratio exceeds the best one a "
            "search over that many skill-free configurations would show by luck (Bailey and "
            "López de Prado 2014); trials are the team's training runs in MLflow (a run that "
            "logs a 'trials' metric counts that many).",
        ),
        ("Buy and hold", "equal weight in the predicted symbols from the first day, no costs."),
        (
            "Direction hit rate",
            "share of up/down calls that were right, beside the share that "
            "always calling 'up' gets on the same calls; skill = (hit rate − always up) / "
            "(1 − always up), 0 for always up, negative when worse; intervals resample whole "
            "dates because the symbols of one day are not independent.",
        ),
        (
            "MAE on return",
            "mean absolute error of the predicted next-day return, beside the "
            "naive no-change forecast's on the same rows.",
        ),
    ]
    items = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in terms)
    return f"<h2>How to read it</h2><dl>{items}</dl>"
