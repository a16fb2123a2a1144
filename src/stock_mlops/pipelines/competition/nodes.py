"""Nodes of the competition pipeline: rank the teams on the same dates, with intervals.

Forecast accuracy is compared only on (symbol, target date) pairs that every team predicted, so no
team wins by choosing easier days. Teams are ranked on their paper-trading record (the broker
account's equity, ``account_history``) once it covers ``min_live_sessions``, else on the backtest
of their out-of-sample predictions. Beside every Sharpe ratio stand its block-bootstrap interval,
the share of shuffled predictions that did as well (the backtest's permutation test) and the
deflated Sharpe ratio, which discounts the configurations a team tried; the leader is compared
with every other team by a paired block bootstrap of the Sharpe difference, Holm-adjusted when
there are several challengers (the leader is the maximum of the board, so one comparison alone
would overstate the evidence).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from stock_mlops.core import columns as C
from stock_mlops.core import metrics as M
from stock_mlops.core.outcomes import join_realised_closes, team_model_rows
from stock_mlops.core.params import CompetitionParams
from stock_mlops.core.universes import UNIVERSES, universe_of
from stock_mlops.core.vocabulary import TEST
from stock_mlops.pipelines.competition.report import render_page

logger = logging.getLogger(__name__)

ROWS = [C.SYMBOL, C.DATE, "prediction", "actual", "last_close"]
PAPER, BACKTEST = "paper trading", "backtest"
COMPARISON_COLUMNS = [
    "basis",
    "leader",
    "challenger",
    "days",
    "sharpe_difference",
    "ci95_low",
    "ci95_high",
    "share_leader_ahead",
    "p_value",
    "p_holm",
    "block",
    "clear_lead",
]


def request_team_outputs(teams: dict[str, str]) -> dict[str, str]:
    """Which storage root to read for each team.

    Args:
        teams: ``params:competition.teams`` (team -> storage root).

    Returns:
        The same mapping, checked, for the ``team_outputs`` dataset to read.

    Raises:
        ValueError: Without any team.
    """
    if not teams:
        raise ValueError(
            "competition.teams is empty: add a team folder conf/<team>/ whose globals.yml names "
            "a team, or pass --params competition.teams.red=data/red"
        )
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
        return pd.DataFrame(columns=ROWS)
    # One prediction per symbol and target date: the team's latest for that day.
    latest = log.sort_values("created_at", kind="stable").drop_duplicates(
        [C.SYMBOL, C.TARGET_DATE], keep="last"
    )
    joined = join_realised_closes(latest, prices)
    logger.info("team %s: %d live predictions met a realised close", team, len(joined))
    return joined.rename(columns={C.TARGET_DATE: C.DATE})[ROWS]


def out_of_sample_predictions(outputs: dict[str, Any]) -> pd.DataFrame:
    """A team's model's out-of-sample test predictions from its training run.

    Args:
        outputs: What ``team_outputs`` loaded for that team.

    Returns:
        ``symbol, date, prediction, actual, last_close``.
    """
    evaluation = outputs.get("evaluation_predictions")
    if evaluation is None:
        return pd.DataFrame(columns=ROWS)
    return team_model_rows(evaluation, TEST)[ROWS]


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


FORECAST_KEYS = [
    "n",
    "mae",
    "mae_return",
    "naive_mae_return",
    "directional_accuracy",
    "directional_accuracy_low",
    "directional_accuracy_high",
    "directional_base_rate",
    "directional_skill",
    "directional_calls",
    "information_coefficient",
    "information_coefficient_low",
    "information_coefficient_high",
    "daily_ic_mean",
    "daily_ic_t",
]


def _forecast_view(rows: pd.DataFrame, prefix: str, params: CompetitionParams) -> dict[str, float]:
    """Accuracy of one team's rows, with the naive forecast's MAE on the same rows beside it
    and intervals from a bootstrap over dates."""
    if rows.empty or rows["prediction"].isna().all():
        return {f"{prefix}_{k}": (0.0 if k == "n" else math.nan) for k in FORECAST_KEYS}
    naive = float((rows["actual"] - rows["last_close"]).abs().mean())
    values = M.forecast_metrics(
        rows["prediction"],
        rows["actual"],
        rows["last_close"],
        naive,
        dates=rows[C.DATE],
        seed=params.random_seed,
    )
    values["naive_mae_return"] = float((rows["actual"] / rows["last_close"] - 1).abs().mean())
    return {f"{prefix}_{k}": values.get(k, math.nan) for k in FORECAST_KEYS}


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


def backtest_returns(outputs: dict[str, Any]) -> pd.Series:
    """Daily returns of the team's backtest equity (empty without a backtest)."""
    equity = outputs.get("backtest_equity")
    if equity is None or equity.empty:
        return pd.Series(dtype=float)
    curve = equity.set_index(pd.to_datetime(equity["date"]))["equity"]
    return curve.pct_change().dropna()


def live_returns(outputs: dict[str, Any]) -> pd.Series:
    """Daily returns of the team's paper-trading account (``account_history``: one row per
    trading day, the last row of a day winning; empty without a record)."""
    history = outputs.get("account_history")
    if history is None or history.empty or "equity" not in history:
        return pd.Series(dtype=float)
    frame = history.assign(date=pd.to_datetime(history[C.DATE])).sort_values(C.DATE)
    curve = frame.drop_duplicates(C.DATE, keep="last").set_index(C.DATE)["equity"].astype(float)
    curve = curve[curve > 0]
    return curve.pct_change().dropna()


def _buy_and_hold(prices: pd.DataFrame | None, symbols: list[str], dates: pd.Index) -> float:
    """Equal-weight buy and hold of ``symbols`` from the close before the first of ``dates`` to
    the last one (NaN without prices)."""
    if prices is None or not len(dates) or not symbols:
        return math.nan
    closes = prices[prices[C.SYMBOL].isin(symbols)].pivot(
        index=C.DATE, columns=C.SYMBOL, values=C.CLOSE
    )
    closes.index = pd.to_datetime(closes.index)
    before = closes[closes.index < dates.min()]
    start = before.iloc[-1] if len(before) else closes[closes.index >= dates.min()].iloc[0]
    end = closes[closes.index <= dates.max()].ffill().iloc[-1]
    growth = (end / start).dropna()
    return float(growth.mean() - 1) if len(growth) else math.nan


def _record_view(
    returns: pd.Series, prefix: str, params: CompetitionParams, trials: dict[str, Any]
) -> dict[str, float]:
    """Return, Sharpe with its interval, drawdown and deflated Sharpe of a daily return series."""
    if len(returns) < 2:
        return {
            f"{prefix}_{k}": math.nan
            for k in ("total_return", "sharpe", "sharpe_low", "sharpe_high", "max_drawdown", "dsr")
        } | {f"{prefix}_sessions": float(len(returns))}
    equity = (1 + returns).cumprod()
    interval = M.sharpe_interval(
        returns,
        risk_free_rate=params.risk_free_rate,
        samples=params.bootstrap_samples,
        seed=params.random_seed,
        kind=params.bootstrap,
    )
    deflated = _deflated(returns, params, trials)
    return {
        f"{prefix}_sessions": float(len(returns)),
        f"{prefix}_total_return": float(equity.iloc[-1] - 1),
        f"{prefix}_sharpe": interval["sharpe"],
        f"{prefix}_sharpe_low": interval["low"],
        f"{prefix}_sharpe_high": interval["high"],
        f"{prefix}_max_drawdown": M.max_drawdown(pd.concat([pd.Series([1.0]), equity])),
        f"{prefix}_dsr": deflated["dsr"],
    }


def _deflated(
    returns: pd.Series, params: CompetitionParams, trials: dict[str, Any]
) -> dict[str, float]:
    count = trials.get("trials")
    if count is None:  # MLflow could not be read: the deflation is unknown, not 0
        return {"dsr": math.nan}
    sharpes = [s for s in trials.get("sharpes", []) if math.isfinite(s)]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) >= 2 else None
    return M.deflated_sharpe_ratio(returns, max(1, int(count)), variance, params.risk_free_rate)


def _universe(outputs: dict[str, Any]) -> str:
    """The bundled universe the team's prices came from ("other" for any other data)."""
    report = outputs.get("data_quality_report")
    if report is not None and "origin" in report:
        names = {
            str(origin).split("/")[1]
            for origin in report["origin"].dropna()
            if str(origin).startswith("snapshot/") and str(origin).count("/") == 2
        }
        if len(names) == 1 and next(iter(names)) in UNIVERSES:
            return next(iter(names))
    prices = outputs.get("prices")
    if prices is None or prices.empty:
        return "unknown"
    dates = pd.to_datetime(prices[C.DATE])
    found = universe_of(set(prices[C.SYMBOL]), dates.min().date(), dates.max().date())
    return found.name if found else "other"


def _backtest_view(outputs: dict[str, Any], params: CompetitionParams) -> dict[str, Any]:
    metrics = outputs.get("backtest_metrics") or {}
    returns = backtest_returns(outputs)
    view = _record_view(returns, "backtest", params, outputs.get("mlflow_trials") or {})
    names = [
        "benchmark_total_return",
        "benchmark_sharpe",
        "excess_total_return",
        "gross_total_return",
        "cost_drag",
        "permutation_share",
        "permutation_p_value",
        "permutation_samples",
        "n_trades",
    ]
    view.update({f"backtest_{name}": _number(metrics.get(name)) for name in names})
    if not len(returns):  # a backtest document without its equity curve: use its own numbers
        for name in ("total_return", "sharpe", "max_drawdown"):
            view[f"backtest_{name}"] = _number(metrics.get(name))
    view["backtest_period"] = (
        f"{metrics['start']}..{metrics['end']}" if "start" in metrics and "end" in metrics else ""
    )
    return view


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def rank_teams(
    team_outputs: dict[str, dict[str, Any]], params: CompetitionParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leaderboard and the comparisons of the leader with every other team.

    Args:
        team_outputs: Per team, what its runs persisted (and its trial count from MLflow).
        params: ``params:competition``.

    Returns:
        ``leaderboard``: one row per team, key columns first (``rank, team, ranked_on, sharpe,
        sharpe_low, sharpe_high, total_return, max_drawdown, benchmark_total_return``...; see
        docs/CONTRACT.md), ranked by the Sharpe ratio of the paper-trading record for teams
        whose record spans ``min_live_sessions``, then by the backtest's; ``team_comparisons``:
        the leader against each other team on their common days (Sharpe difference with a 95%
        block-bootstrap interval, one-sided p-value, Holm-adjusted p-value, ``clear_lead`` when
        the adjusted p-value is below 0.05).
    """
    live = common_rows({t: realised_predictions(t, o) for t, o in team_outputs.items()})
    oos = common_rows({t: out_of_sample_predictions(o) for t, o in team_outputs.items()})
    rows = []
    returns: dict[str, dict[str, pd.Series]] = {PAPER: {}, BACKTEST: {}}
    for team, outputs in team_outputs.items():
        trials = outputs.get("mlflow_trials") or {}
        paper = live_returns(outputs)
        returns[PAPER][team], returns[BACKTEST][team] = paper, backtest_returns(outputs)
        row: dict[str, Any] = {"team": team}
        row.update(_record_view(paper, "live", params, trials))
        symbols = (
            sorted(set(outputs["predictions"][C.SYMBOL])) if _has(outputs, "predictions") else []
        )
        row["live_benchmark_total_return"] = _buy_and_hold(
            outputs.get("prices"), symbols, paper.index
        )
        row.update(_backtest_view(outputs, params))
        row.update(_forecast_view(live[team], "live", params))
        row.update(_forecast_view(oos[team], "oos", params))
        row.update(
            predecessor_view(
                live[team] if len(live[team]) else oos[team], params.start_date, params.n_days
            )
        )
        row.update(
            {
                "trials": _number(trials.get("trials")),
                "trials_note": trials.get("note", "MLflow not read"),
                "universe": _universe(outputs),
                "storage_root": outputs.get("root", ""),
                "has_outputs": any(
                    outputs.get(n) is not None
                    for n in outputs
                    if n not in ("root", "mlflow_trials")
                ),
            }
        )
        rows.append(row)
    board = _ranked(pd.DataFrame(rows), params)
    comparisons = _compare_with_leader(board, returns, params)
    logger.info(
        "leaderboard (%s):\n%s",
        board["ranked_on"].iloc[0] if len(board) else "empty",
        board[["rank", "team", "ranked_on", "sharpe"]].to_string(index=False),
    )
    return board, comparisons


def _has(outputs: dict[str, Any], name: str) -> bool:
    value = outputs.get(name)
    return value is not None and len(value) > 0


KEY_COLUMNS = [
    "rank",
    "team",
    "ranked_on",
    "sharpe",
    "sharpe_low",
    "sharpe_high",
    "total_return",
    "max_drawdown",
    "benchmark_total_return",
    "excess_total_return",
    "mae_return",
    "naive_mae_return",
    "directional_accuracy",
    "directional_base_rate",
    "directional_skill",
    "permutation_share",
    "dsr",
    "trials",
    "sessions",
]


def _ranked(board: pd.DataFrame, params: CompetitionParams) -> pd.DataFrame:
    """Chooses each team's basis (its paper record once long enough, else its backtest), copies
    the basis's figures into the key columns and ranks on their Sharpe ratio."""
    paper = board["live_sessions"] >= params.min_live_sessions
    # Forecasts: the live rows once the record counts, else the out-of-sample test rows.
    has_live, has_oos = board["live_n"] > 0, board["oos_n"] > 0
    forecast = np.where((paper & has_live) | (has_live & ~has_oos), "live", "oos")
    basis = np.where(paper, "live", "backtest")
    pick = {
        "sharpe": "{}_sharpe",
        "sharpe_low": "{}_sharpe_low",
        "sharpe_high": "{}_sharpe_high",
        "total_return": "{}_total_return",
        "max_drawdown": "{}_max_drawdown",
        "dsr": "{}_dsr",
        "sessions": "{}_sessions",
    }
    for column, pattern in pick.items():
        board[column] = [
            board.at[i, pattern.format(b)] for i, b in zip(board.index, basis, strict=True)
        ]
    board["benchmark_total_return"] = np.where(
        paper, board["live_benchmark_total_return"], board["backtest_benchmark_total_return"]
    )
    board["excess_total_return"] = board["total_return"] - board["benchmark_total_return"]
    # The permutation test exists for the backtest only.
    board["permutation_share"] = np.where(paper, math.nan, board["backtest_permutation_share"])
    for column in (
        "mae_return",
        "naive_mae_return",
        "directional_accuracy",
        "directional_base_rate",
        "directional_skill",
    ):
        board[column] = [
            board.at[i, f"{f}_{column}"] for i, f in zip(board.index, forecast, strict=True)
        ]
    board["ranked_on"] = np.where(paper, PAPER, BACKTEST)
    board["forecasts_from"] = np.where(forecast == "live", "live predictions", "out-of-sample test")
    board = board.assign(_paper=paper.astype(int)).sort_values(
        ["_paper", "sharpe", "mae_return"],
        ascending=[False, False, True],
        na_position="last",
        kind="stable",
    )
    board = board.drop(columns="_paper").reset_index(drop=True)
    board.insert(0, "rank", range(1, len(board) + 1))
    details = [c for c in board.columns if c not in KEY_COLUMNS]
    return board[KEY_COLUMNS + details]


def _compare_with_leader(
    board: pd.DataFrame, returns: dict[str, dict[str, pd.Series]], params: CompetitionParams
) -> pd.DataFrame:
    if board.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    leader = board["team"].iloc[0]
    basis = board["ranked_on"].iloc[0]
    series = returns[basis]
    rows = []
    for other in board["team"].iloc[1:]:
        if not len(series.get(leader, [])) or not len(series.get(other, [])):
            continue
        result = M.bootstrap_sharpe_difference(
            series[leader],
            series[other],
            params.bootstrap_samples,
            params.random_seed,
            block=params.bootstrap_block,
            kind=params.bootstrap,
            risk_free_rate=params.risk_free_rate,
        )
        rows.append(
            {
                "basis": basis,
                "leader": leader,
                "challenger": other,
                "days": result["n"],
                "sharpe_difference": result["difference"],
                "ci95_low": result["low"],
                "ci95_high": result["high"],
                "share_leader_ahead": result["share_a_ahead"],
                "p_value": result["p_value"],
                "block": result["block"],
            }
        )
    adjusted = M.holm({r["challenger"]: r["p_value"] for r in rows})
    for row in rows:
        row["p_holm"] = adjusted[row["challenger"]]
        row["clear_lead"] = bool(math.isfinite(row["p_holm"]) and row["p_holm"] < 0.05)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def render_leaderboard(
    leaderboard: pd.DataFrame,
    team_comparisons: pd.DataFrame,
    team_outputs: dict[str, dict[str, Any]],
) -> str:
    """The leaderboard page: ranked key figures, the comparisons, the universe's selection bias,
    the equity curves and every detail (see :mod:`stock_mlops.pipelines.competition.report`).

    Args:
        leaderboard: The ``leaderboard`` table.
        team_comparisons: The ``team_comparisons`` table.
        team_outputs: Per team, what its runs persisted (for the equity curves).

    Returns:
        The page.
    """
    return render_page(leaderboard, team_comparisons, team_outputs)
