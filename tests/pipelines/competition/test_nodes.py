"""The competition ranks teams on the same dates, with intervals, from their persisted outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from stock_mlops.core import metrics as M
from stock_mlops.core.params import CompetitionParams
from stock_mlops.datasets.team_outputs import TeamOutputsDataset
from stock_mlops.pipelines.competition.nodes import (
    common_rows,
    predecessor_view,
    rank_teams,
    realised_predictions,
    render_leaderboard,
    request_team_outputs,
)

PARAMS = CompetitionParams(bootstrap_samples=500, bootstrap_block=5, random_seed=3)


def _log(prices: pd.DataFrame, error: float, days: list[str]) -> pd.DataFrame:
    rows = prices[prices["date"].isin(pd.to_datetime(days))].copy()
    following = prices.assign(date=prices.groupby("symbol")["date"].shift(1)).dropna()
    nxt = rows.merge(
        following[["symbol", "date", "close"]], on=["symbol", "date"], suffixes=("", "_next")
    )
    return pd.DataFrame(
        {
            "team": "t",
            "symbol": nxt["symbol"],
            "feature_date": nxt["date"],
            "target_date": nxt["date"].map(
                dict(zip(prices["date"].iloc[:-1], prices["date"].iloc[1:], strict=True))
            ),
            "last_close": nxt["close"],
            "prediction": nxt["close_next"] * (1 + error),
            "predicted_return": nxt["close_next"] * (1 + error) / nxt["close"] - 1,
            "created_at": pd.Timestamp("2024-01-01"),
        }
    )


def _equity(daily_return: np.ndarray) -> pd.DataFrame:
    dates = pd.bdate_range("2023-01-02", periods=len(daily_return) + 1)
    equity = 100_000 * np.cumprod(np.r_[1.0, 1 + daily_return])
    return pd.DataFrame({"date": dates, "equity": equity, "benchmark_equity": equity[::-1]})


@pytest.fixture
def outputs(small_prices):
    aapl = small_prices[small_prices["symbol"] == "AAPL"].reset_index(drop=True)
    days = [str(d.date()) for d in aapl["date"].iloc[-30:-1]]
    rng = np.random.default_rng(0)
    good = rng.normal(0.002, 0.01, 250)
    bad = rng.normal(-0.001, 0.01, 250)
    return {
        "red": {
            "root": "data/red",
            "prices": aapl,
            "predictions": _log(aapl, 0.001, days),
            "evaluation_predictions": None,
            "backtest_equity": _equity(good),
            "backtest_metrics": M.performance_metrics(_equity(good).set_index("date")["equity"]),
        },
        "blue": {
            "root": "data/blue",
            "prices": aapl,
            # Blue missed the first ten days: only the common days are compared.
            "predictions": _log(aapl, 0.02, days[10:]),
            "evaluation_predictions": None,
            "backtest_equity": _equity(bad),
            "backtest_metrics": M.performance_metrics(_equity(bad).set_index("date")["equity"]),
        },
    }


def test_live_predictions_join_the_following_close(outputs):
    rows = realised_predictions("red", outputs["red"])
    assert len(rows) == 29
    assert (rows["prediction"] / rows["actual"]).to_numpy() == pytest.approx(1.001)


def test_teams_are_compared_on_common_rows_only(outputs):
    common = common_rows({t: realised_predictions(t, o) for t, o in outputs.items()})
    assert len(common["red"]) == len(common["blue"]) == 19
    assert common["red"]["date"].tolist() == common["blue"]["date"].tolist()


def test_leaderboard_ranks_by_sharpe_with_intervals(outputs):
    board, comparisons = rank_teams(outputs, PARAMS)
    assert board["team"].tolist() == ["red", "blue"] and board["rank"].tolist() == [1, 2]
    red = board.set_index("team").loc["red"]
    assert red["live_n"] == 19
    assert red["live_mae_return"] == pytest.approx(0.001, rel=0.1)
    assert red["live_directional_accuracy_low"] <= red["live_directional_accuracy"]
    assert board.set_index("team").loc["blue", "live_mae"] > red["live_mae"]
    row = comparisons.iloc[0]
    assert (row["leader"], row["challenger"]) == ("red", "blue")
    assert row["ci95_low"] <= row["sharpe_difference"] <= row["ci95_high"]
    assert row["clear_lead"]  # 250 days of +0.2% against -0.1% is no luck


def test_identical_teams_are_not_separated_by_luck(outputs):
    outputs["blue"] = {**outputs["red"], "root": "data/blue"}
    _, comparisons = rank_teams(outputs, PARAMS)
    row = comparisons.iloc[0]
    assert row["sharpe_difference"] == pytest.approx(0.0)
    assert not row["clear_lead"]


def test_predecessor_view_counts_n_days_from_start(outputs):
    rows = realised_predictions("red", outputs["red"])
    start = rows["date"].sort_values().iloc[5]
    view = predecessor_view(rows, start, 10)
    assert view["legacy_days"] == 10
    chosen = rows[rows["date"].isin(sorted(rows["date"][rows["date"] >= start])[:10])]
    hits = (chosen["prediction"] > chosen["last_close"]) == (
        chosen["actual"] > chosen["last_close"]
    )
    assert view["legacy_hit_rate"] == pytest.approx(hits.mean())
    assert view["legacy_mae"] == pytest.approx(
        (chosen["prediction"] - chosen["actual"]).abs().mean()
    )
    empty = predecessor_view(rows, "2030-01-01", None)
    assert empty["legacy_days"] == 0


def test_a_competition_needs_two_teams():
    with pytest.raises(ValueError, match="at least two teams"):
        request_team_outputs({"red": "data/red"})
    assert request_team_outputs({"red": "a", "blue": "b"}) == {"red": "a", "blue": "b"}


def test_page_shows_table_verdict_and_chart(outputs):
    board, comparisons = rank_teams(outputs, PARAMS)
    html = render_leaderboard(board, comparisons, outputs)
    assert "<table" in html and "red vs blue" in html and "plotly" in html.lower()
    assert "a lead larger than luck" in html


def test_team_outputs_dataset_reads_each_root(tmp_path, outputs):
    red = tmp_path / "red"
    (red / "07_model_output").mkdir(parents=True)
    outputs["red"]["predictions"].to_parquet(red / "07_model_output" / "predictions.parquet")
    dataset = TeamOutputsDataset(
        filepath=str(tmp_path / "request.json"),
        layout={
            "predictions": "07_model_output/predictions.parquet",
            "backtest_metrics": "x.json",
            "prices": "03_primary/prices.parquet",
        },
        read=["predictions", "backtest_metrics"],
    )
    dataset.save({"red": str(red), "blue": str(tmp_path / "blue")})
    loaded = dataset.load()
    assert len(loaded["red"]["predictions"]) == 29
    assert loaded["red"]["backtest_metrics"] is None
    assert loaded["blue"]["predictions"] is None  # a team that has not run yet
    assert "prices" not in loaded["red"]  # only what the competition asks to read


def test_team_outputs_refuses_a_name_without_a_path(tmp_path):
    with pytest.raises(DatasetError, match=r"\['orders'\] have no path in the layout"):
        TeamOutputsDataset(filepath=str(tmp_path / "r.json"), layout={}, read=["orders"])


def test_a_team_without_outputs_is_listed_last_not_dropped(outputs):
    outputs["green"] = {
        "root": "data/green",
        "prices": None,
        "predictions": None,
        "evaluation_predictions": None,
        "backtest_equity": None,
        "backtest_metrics": None,
    }
    board, comparisons = rank_teams(outputs, PARAMS)
    assert board["team"].tolist()[-1] == "green"
    # The teams that did run are still compared on their common days.
    assert board.set_index("team").loc["red", "live_n"] == 19
    assert np.isnan(board.set_index("team").loc["green", "backtest_sharpe"])
    assert "green" not in set(comparisons["challenger"])  # nothing to bootstrap


def test_page_without_backtests_says_so(outputs):
    for team in outputs.values():
        team["backtest_equity"] = None
        team["backtest_metrics"] = None
    board, comparisons = rank_teams(outputs, PARAMS)
    html = render_leaderboard(board, comparisons, outputs)
    assert comparisons.empty and "no backtests to compare" in html
