"""Nodes of the competition pipeline: rank the teams on the same dates, with intervals.

Forecast accuracy is compared only on (symbol, target date) pairs that every team predicted, so no
team wins by choosing easier days. The backtest comparison adds a paired block-bootstrap interval
on the difference in Sharpe ratio, so a reader can see whether the lead is larger than luck.
"""

from __future__ import annotations

import html
import logging
import math
from typing import Any

import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core import metrics as M
from stock_mlops.core.outcomes import join_realised_closes, team_model_rows
from stock_mlops.core.params import CompetitionParams
from stock_mlops.core.vocabulary import TEST

logger = logging.getLogger(__name__)


def request_team_outputs(teams: dict[str, str]) -> dict[str, str]:
    """Which storage root to read for each team.

    Args:
        teams: ``params:competition.teams`` (team -> storage root).

    Returns:
        The same mapping, checked, for the ``team_outputs`` dataset to read.

    Raises:
        ValueError: With fewer than two teams.
    """
    if len(teams) < 2:
        raise ValueError(f"competition.teams needs at least two teams, got {teams}")
    return dict(teams)


def realised_predictions(team: str, outputs: dict[str, Any]) -> pd.DataFrame:
    """A team's live predictions joined with the close that followed (by symbol and date).

    Args:
        team: The team's name (for log messages).
        outputs: What ``team_outputs`` loaded for that team.

    Returns:
        ``symbol, date, prediction, actual, last_close`` (empty when nothing is realised).
    """
    log, prices = outputs.get("predictions"), outputs.get("prices")
    if log is None or prices is None or log.empty:
        return pd.DataFrame(columns=[C.SYMBOL, C.DATE, "prediction", "actual", "last_close"])
    # One prediction per symbol and target date: the team's latest for that day.
    latest = log.sort_values("created_at", kind="stable").drop_duplicates(
        [C.SYMBOL, C.TARGET_DATE], keep="last"
    )
    joined = join_realised_closes(latest, prices)
    return joined.rename(columns={C.TARGET_DATE: C.DATE})[
        [C.SYMBOL, C.DATE, "prediction", "actual", "last_close"]
    ]


def out_of_sample_predictions(outputs: dict[str, Any]) -> pd.DataFrame:
    """A team's model's out-of-sample test predictions from its training run.

    Args:
        outputs: What ``team_outputs`` loaded for that team.

    Returns:
        ``symbol, date, prediction, actual, last_close``.
    """
    evaluation = outputs.get("evaluation_predictions")
    if evaluation is None:
        return pd.DataFrame(columns=[C.SYMBOL, C.DATE, "prediction", "actual", "last_close"])
    rows = team_model_rows(evaluation, TEST)
    return rows[[C.SYMBOL, C.DATE, "prediction", "actual", "last_close"]]


def common_rows(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Restricts every team's rows to the (symbol, date) pairs that all teams with rows have.

    Args:
        frames: Team -> rows with ``symbol`` and ``date``.

    Returns:
        Team -> its rows on the common pairs, sorted by date and symbol.
    """
    keys = None
    # A team with no rows yet (it has not run) must not empty everyone else's comparison.
    for frame in (f for f in frames.values() if len(f)):
        index = pd.MultiIndex.from_frame(
            frame[[C.SYMBOL, C.DATE]].astype({C.DATE: "datetime64[ns]"})
        )
        keys = index if keys is None else keys.intersection(index)
    if keys is None:  # no team has rows: nothing to restrict
        return dict(frames)
    result = {}
    for team, frame in frames.items():
        index = pd.MultiIndex.from_frame(
            frame[[C.SYMBOL, C.DATE]].astype({C.DATE: "datetime64[ns]"})
        )
        result[team] = frame[index.isin(keys)].sort_values([C.DATE, C.SYMBOL])
    return result


def _forecast_view(rows: pd.DataFrame, prefix: str) -> dict[str, float]:
    if rows.empty or rows["prediction"].isna().all():
        return {f"{prefix}_n": 0.0}
    values = M.forecast_metrics(rows["prediction"], rows["actual"], rows["last_close"])
    keep = [
        "n",
        "mae",
        "mae_return",
        "directional_accuracy",
        "directional_accuracy_low",
        "directional_accuracy_high",
        "information_coefficient",
    ]
    return {f"{prefix}_{k}": values[k] for k in keep}


def predecessor_view(rows: pd.DataFrame, start_date: Any, n_days: int | None) -> dict[str, float]:
    """The predecessor's scoring: MAE and direction hit rate over N days from a start date.

    Args:
        rows: ``symbol, date, prediction, actual, last_close``.
        start_date: First date counted (None: all).
        n_days: Number of dates counted (None: all).

    Returns:
        ``legacy_mae``, ``legacy_hit_rate``, ``legacy_days``.
    """
    if start_date is not None:
        rows = rows[pd.to_datetime(rows[C.DATE]) >= pd.Timestamp(start_date)]
    if n_days is not None:
        days = sorted(pd.to_datetime(rows[C.DATE]).unique())[:n_days]
        rows = rows[pd.to_datetime(rows[C.DATE]).isin(days)]
    if rows.empty:
        return {"legacy_mae": math.nan, "legacy_hit_rate": math.nan, "legacy_days": 0.0}
    predicted_up = rows["prediction"] > rows["last_close"]
    actual_up = rows["actual"] > rows["last_close"]
    return {
        "legacy_mae": float((rows["prediction"] - rows["actual"]).abs().mean()),
        "legacy_hit_rate": float((predicted_up == actual_up).mean()),
        "legacy_days": float(rows[C.DATE].nunique()),
    }


def rank_teams(
    team_outputs: dict[str, dict[str, Any]], params: CompetitionParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leaderboard and the pairwise Sharpe comparisons.

    Args:
        team_outputs: Per team, what its runs persisted.
        params: ``params:competition``.

    Returns:
        ``leaderboard`` (one row per team, ranked by backtest Sharpe, then by live MAE) and
        ``team_comparisons`` (each team against the leader: Sharpe difference with a 95%
        bootstrap interval and the share of resamples in which the leader is ahead).
    """
    live = common_rows({t: realised_predictions(t, o) for t, o in team_outputs.items()})
    oos = common_rows({t: out_of_sample_predictions(o) for t, o in team_outputs.items()})
    rows = []
    returns: dict[str, pd.Series] = {}
    for team, outputs in team_outputs.items():
        row: dict[str, Any] = {"team": team, "storage_root": outputs["root"]}
        row.update(_forecast_view(live[team], "live"))
        row.update(_forecast_view(oos[team], "oos"))
        row.update(
            predecessor_view(
                live[team] if len(live[team]) else oos[team], params.start_date, params.n_days
            )
        )
        row.update(_backtest_view(outputs))
        equity = outputs.get("backtest_equity")
        if equity is not None:
            returns[team] = equity.set_index("date")["equity"].pct_change().dropna()
        rows.append(row)
    board = pd.DataFrame(rows)
    board = board.sort_values(
        ["backtest_sharpe", "live_mae" if "live_mae" in board else "oos_mae"],
        ascending=[False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    comparisons = _compare_with_leader(board["team"].tolist(), returns, params)
    logger.info(
        "leaderboard:\n%s", board[["rank", "team", "backtest_sharpe"]].to_string(index=False)
    )
    return board, comparisons


def _backtest_view(outputs: dict[str, Any]) -> dict[str, float]:
    metrics = outputs.get("backtest_metrics") or {}
    names = ["total_return", "sharpe", "max_drawdown", "benchmark_total_return", "benchmark_sharpe"]
    return {f"backtest_{name}": _number(metrics.get(name)) for name in names}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _compare_with_leader(
    ranked: list[str], returns: dict[str, pd.Series], params: CompetitionParams
) -> pd.DataFrame:
    leader = ranked[0]
    rows = []
    for other in ranked[1:]:
        if leader not in returns or other not in returns:
            continue
        result = M.bootstrap_sharpe_difference(
            returns[leader],
            returns[other],
            params.bootstrap_samples,
            params.bootstrap_block,
            params.random_seed,
        )
        rows.append(
            {
                "leader": leader,
                "challenger": other,
                "sharpe_difference": result["difference"],
                "ci95_low": result["low"],
                "ci95_high": result["high"],
                "share_leader_ahead": result["p_a_better"],
                "clear_lead": bool(result["low"] > 0) if math.isfinite(result["low"]) else False,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "leader",
            "challenger",
            "sharpe_difference",
            "ci95_low",
            "ci95_high",
            "share_leader_ahead",
            "clear_lead",
        ],
    )


def render_leaderboard(
    leaderboard: pd.DataFrame,
    team_comparisons: pd.DataFrame,
    team_outputs: dict[str, dict[str, Any]],
) -> str:
    """An HTML page with the leaderboard, the comparisons and the teams' equity curves.

    Args:
        leaderboard: The ``leaderboard`` table.
        team_comparisons: The ``team_comparisons`` table.
        team_outputs: Per team, what its runs persisted (for the equity curves).

    Returns:
        The page.
    """
    import plotly.graph_objects as go  # noqa: PLC0415

    figure = go.Figure()
    for team, outputs in team_outputs.items():
        equity = outputs.get("backtest_equity")
        if equity is not None:
            figure.add_scatter(x=equity["date"], y=equity["equity"], name=team)
    benchmark = next(
        (
            o["backtest_equity"]
            for o in team_outputs.values()
            if o.get("backtest_equity") is not None
        ),
        None,
    )
    if benchmark is not None:
        figure.add_scatter(
            x=benchmark["date"],
            y=benchmark["benchmark_equity"],
            name="buy and hold",
            line={"dash": "dot"},
        )
    figure.update_layout(title="Backtest equity by team", xaxis_title="date", yaxis_title="equity")
    verdicts = "".join(
        f"<li>{html.escape(r.leader)} vs {html.escape(r.challenger)}: Sharpe difference "
        f"{r.sharpe_difference:.2f} (95% interval {r.ci95_low:.2f} to {r.ci95_high:.2f}); "
        + ("a lead larger than luck" if r.clear_lead else "not distinguishable from luck")
        + "</li>"
        for r in team_comparisons.itertuples()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>stock-mlops leaderboard</title>"
        "</head><body><h1>Red versus blue</h1>"
        f"{leaderboard.to_html(index=False, float_format=lambda v: f'{v:.4f}', na_rep='-')}"
        "<h2>Is the leader ahead by more than luck?</h2>"
        f"<ul>{verdicts or '<li>no backtests to compare</li>'}</ul>"
        f"{figure.to_html(full_html=False, include_plotlyjs=True)}"
        "</body></html>"
    )
