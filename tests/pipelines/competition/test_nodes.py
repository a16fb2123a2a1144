"""The competition ranks teams on the same dates, with intervals, from their persisted outputs."""

from __future__ import annotations

import re

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

PARAMS = CompetitionParams(bootstrap_samples=500, random_seed=3)
NOTHING = {
    "prices": None,
    "predictions": None,
    "evaluation_predictions": None,
    "backtest_equity": None,
    "backtest_metrics": None,
    "data_quality_report": None,
    "account_history": None,
}


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
            "data_quality_report": None,
            "account_history": None,
            "mlflow_trials": {"trials": 3, "runs": 3, "sharpes": [], "note": "3 trials"},
        },
        "blue": {
            "root": "data/blue",
            "prices": aapl,
            # Blue missed the first ten days: only the common days are compared.
            "predictions": _log(aapl, 0.02, days[10:]),
            "evaluation_predictions": None,
            "backtest_equity": _equity(bad),
            "backtest_metrics": M.performance_metrics(_equity(bad).set_index("date")["equity"]),
            "data_quality_report": None,
            "account_history": None,
            "mlflow_trials": {"trials": 1, "runs": 1, "sharpes": [], "note": "1 trial"},
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


def test_a_competition_needs_a_team():
    with pytest.raises(ValueError, match="competition.teams is empty"):
        request_team_outputs({})
    assert request_team_outputs({"red": "a"}) == {"red": "a"}


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
    outputs["green"] = {"root": "data/green", **NOTHING}
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


# ------------------------------------------------------------ right after `make run`, one team
def test_a_board_right_after_make_run_where_no_team_has_run(tmp_path):
    empty = {team: {"root": f"data/{team}", **NOTHING} for team in ("red", "blue")}
    board, comparisons = rank_teams(empty, PARAMS)  # today: KeyError 'oos_mae'
    assert board["team"].tolist() == ["blue", "red"] or board["team"].tolist() == ["red", "blue"]
    assert board["rank"].tolist() == [1, 2] and comparisons.empty
    page = render_leaderboard(board, comparisons, empty)
    assert "No team has results yet" in page
    assert "kedro run --env red" in page and "kedro run --pipelines competition" in page


def test_one_team_gets_a_board_without_comparisons(outputs):
    board, comparisons = rank_teams({"red": outputs["red"]}, PARAMS)
    assert board["team"].tolist() == ["red"] and comparisons.empty
    assert "only one team is on the board" in render_leaderboard(board, comparisons, outputs)


# --------------------------------------------------------------------- intervals and luck
def test_the_sharpe_difference_uses_a_data_driven_block(outputs):
    _, comparisons = rank_teams(outputs, PARAMS)
    red = _equity_returns(outputs["red"])
    blue = _equity_returns(outputs["blue"])
    pair = pd.concat([red, blue], axis=1, join="inner").to_numpy()
    assert comparisons["block"].iloc[0] == M.block_length(pair)
    fixed = rank_teams(outputs, CompetitionParams(bootstrap_samples=500, bootstrap_block=9))[1]
    assert fixed["block"].iloc[0] == 9


def _equity_returns(team: dict) -> pd.Series:
    equity = team["backtest_equity"].set_index("date")["equity"]
    return equity.pct_change().dropna()


def test_holm_adjusts_the_leaders_comparisons_with_more_than_two_teams(outputs):
    rng = np.random.default_rng(11)
    for name, drift in (("green", 0.0008), ("yellow", 0.0005)):
        outputs[name] = {
            **outputs["blue"],
            "root": f"data/{name}",
            "backtest_equity": _equity(rng.normal(drift, 0.01, 250)),
        }
    board, comparisons = rank_teams(outputs, PARAMS)
    assert board["team"].iloc[0] == "red" and len(comparisons) == 3
    adjusted = M.holm(dict(zip(comparisons["challenger"], comparisons["p_value"], strict=True)))
    assert comparisons["p_holm"].tolist() == pytest.approx(
        [adjusted[c] for c in comparisons["challenger"]]
    )
    assert (comparisons["p_holm"] >= comparisons["p_value"]).all()
    assert (comparisons["p_holm"] > comparisons["p_value"]).any()
    assert comparisons["clear_lead"].tolist() == (comparisons["p_holm"] < 0.05).tolist()
    assert "Holm-adjusted over 3 comparisons" in render_leaderboard(board, comparisons, outputs)


def test_the_deflated_sharpe_falls_with_the_trials_counted_in_mlflow(outputs):
    few = rank_teams(outputs, PARAMS)[0].set_index("team")
    outputs["red"]["mlflow_trials"] = {"trials": 200, "runs": 4, "sharpes": [], "note": ""}
    many = rank_teams(outputs, PARAMS)[0].set_index("team")
    assert many.loc["red", "trials"] == 200
    assert many.loc["red", "dsr"] < few.loc["red", "dsr"]
    outputs["red"]["mlflow_trials"] = {"trials": None, "sharpes": [], "note": "unreachable"}
    unknown = rank_teams(outputs, PARAMS)[0].set_index("team")
    assert np.isnan(unknown.loc["red", "dsr"])  # an unknown count is not one trial


def test_key_columns_come_first_with_the_base_rate_beside_accuracy(outputs):
    board, _ = rank_teams(outputs, PARAMS)
    assert board.columns[:10].tolist() == [
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
    ]
    red = board.set_index("team").loc["red"]
    assert red["sharpe_low"] < red["sharpe"] < red["sharpe_high"]
    assert red["live_directional_base_rate"] == pytest.approx(
        M.directional_metrics(
            pd.Series(1.0, index=range(19)), pd.Series(np.sign(_live_moves(outputs)))
        )["directional_base_rate"]
    )


def _live_moves(outputs) -> np.ndarray:
    rows = common_rows({t: realised_predictions(t, o) for t, o in outputs.items()})["red"]
    return (rows["actual"] / rows["last_close"] - 1).to_numpy()


# ------------------------------------------------------------------------ the live record
def _history(daily_return: np.ndarray, start: str = "2023-11-01") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=len(daily_return) + 1)
    equity = 100_000 * np.cumprod(np.r_[1.0, 1 + daily_return])
    return pd.DataFrame(
        {
            "date": dates,
            "cash": equity * 0.1,
            "positions_value": equity * 0.9,
            "equity": equity,
            "broker": "local",
        }
    )


def test_teams_are_ranked_on_their_paper_trading_record_once_it_is_long_enough(outputs):
    rng = np.random.default_rng(5)
    # Blue lost the backtest but trades better on paper.
    outputs["red"]["account_history"] = _history(rng.normal(-0.002, 0.01, 40))
    outputs["blue"]["account_history"] = _history(rng.normal(0.003, 0.01, 40))
    board, comparisons = rank_teams(outputs, PARAMS)
    assert board["team"].tolist() == ["blue", "red"]
    assert set(board["ranked_on"]) == {"paper trading"}
    blue = board.set_index("team").loc["blue"]
    assert blue["sessions"] == blue["live_sessions"] == 40
    assert blue["sharpe"] == blue["live_sharpe"] and blue["sharpe_low"] < blue["sharpe"]
    assert blue["backtest_sharpe"] < board.set_index("team").loc["red", "backtest_sharpe"]
    assert np.isfinite(blue["live_benchmark_total_return"])
    assert comparisons["basis"].iloc[0] == "paper trading"
    assert comparisons["days"].iloc[0] == 40
    page = render_leaderboard(board, comparisons, outputs)
    assert "on their paper-trading record" in page and "Paper-trading equity by team" in page


def test_a_short_paper_record_is_shown_but_the_backtest_ranks(outputs):
    outputs["blue"]["account_history"] = _history(np.full(5, 0.01))
    board, _ = rank_teams(outputs, PARAMS)
    assert board["team"].tolist() == ["red", "blue"]
    assert board.set_index("team").loc["blue", "live_sessions"] == 5
    assert set(board["ranked_on"]) == {"backtest"}


def test_the_universe_and_its_bias_are_on_the_page(outputs):
    outputs["red"]["data_quality_report"] = pd.DataFrame(
        {"symbol": ["AAPL"], "origin": ["snapshot/av10/AAPL.csv"]}
    )
    board, comparisons = rank_teams(outputs, PARAMS)
    assert board.set_index("team").loc["red", "universe"] == "av10"
    assert board.set_index("team").loc["blue", "universe"] == "mag7"  # from its prices' dates
    page = render_leaderboard(board, comparisons, outputs)
    assert "picked with hindsight" in page and "still survivors" in page


@pytest.mark.browser
def test_leaderboard_page_reads_at_1400_px_offline(outputs, tmp_path, browser):
    outputs["blue"]["account_history"] = _history(np.full(5, 0.001))
    board, comparisons = rank_teams(outputs, PARAMS)
    page = tmp_path / "leaderboard.html"
    page.write_text(render_leaderboard(board, comparisons, outputs), encoding="utf-8")
    browser.open(page.as_uri(), wait_css="#leaderboard")
    assert browser.page_width() <= 1400  # no horizontal scroll bar
    table = browser.assert_visible("#leaderboard", min_width=900)[0]
    assert table["x"] >= 0 and table["x"] + table["width"] <= 1400
    ranks = browser.assert_visible("#leaderboard td:first-child", min_count=2)
    assert [r["text"] for r in ranks] == ["1", "2"]
    assert all(0 <= r["x"] and r["x"] + r["width"] <= 1400 for r in ranks)
    assert "Sharpe" in browser.assert_visible("#leaderboard th")[2]["text"]
    details = browser.assert_visible("#details")[0]["text"]
    # Counts print as counts and shares as percentages, never as 19.0000 or 0.5263.
    assert not re.search(r"\d\.\d{4}", details)
    assert re.search(r"\b19\b", details) and "%" in details
    browser.assert_visible(".js-plotly-plot", min_height=300)
    assert browser.nonlocal_requests() == []
    assert browser.console_errors() == []


# ------------------------------------------------------------------ reading the teams' roots
def test_trials_are_counted_from_the_teams_training_runs_in_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    red = client.create_experiment("stock_mlops_red", artifact_location=(tmp_path / "a").as_uri())
    client.create_experiment("stock_mlops_blue", artifact_location=(tmp_path / "b").as_uri())

    def run(tags: dict, metrics: dict) -> None:
        created = client.create_run(red, tags=tags)
        for key, value in metrics.items():
            client.log_metric(created.info.run_id, key, value)
        client.set_terminated(created.info.run_id)

    trained = {"training_data_sha256": "abc"}
    run(trained, {"backtest.sharpe": 0.4})  # a training run: 1 trial
    run(trained, {"backtest.sharpe": 1.2})
    run({}, {"trials": 25.0})  # a hyperparameter search that tried 25 configurations
    run({}, {"backtest.sharpe": 0.9})  # a backtest-only run: not a trial
    for root in ("red", "blue"):
        (tmp_path / root).mkdir()
    dataset = TeamOutputsDataset(
        filepath=str(tmp_path / "request.json"),
        layout={"backtest_metrics": "08_reporting/backtest_metrics.json"},
        mlflow_experiment="stock_mlops_{team}",
        tracking_uri=uri,
    )
    dataset.save({"red": str(tmp_path / "red"), "blue": str(tmp_path / "blue")})
    loaded = dataset.load()
    assert loaded["red"]["mlflow_trials"]["trials"] == 27
    assert loaded["red"]["mlflow_trials"]["runs"] == 3
    assert sorted(loaded["red"]["mlflow_trials"]["sharpes"]) == [0.4, 0.9, 1.2]
    assert loaded["blue"]["mlflow_trials"]["trials"] == 0
    assert "no training run found in 'stock_mlops_blue'" in loaded["blue"]["mlflow_trials"]["note"]


def test_an_unreachable_mlflow_store_leaves_the_trials_unknown(tmp_path):
    dataset = TeamOutputsDataset(
        filepath=str(tmp_path / "request.json"),
        layout={},
        mlflow_experiment="stock_mlops_{team}",
        tracking_uri="http://127.0.0.1:9",  # nothing listens on the discard port
    )
    dataset.save({"red": str(tmp_path / "red")})
    trials = dataset.load()["red"]["mlflow_trials"]
    assert trials["trials"] is None and trials["note"]


def test_team_outputs_read_csv_and_tolerate_a_missing_account_history(tmp_path):
    red = tmp_path / "red"
    (red / "08_reporting").mkdir(parents=True)
    (red / "08_reporting/data_quality_report.csv").write_text(
        "symbol,origin\nAAPL,snapshot/av10/AAPL.csv\n"
    )
    dataset = TeamOutputsDataset(
        filepath=str(tmp_path / "request.json"),
        layout={
            "data_quality_report": "08_reporting/data_quality_report.csv",
            "account_history": "07_model_output/account_history.parquet",
        },
    )
    dataset.save({"red": str(red)})  # one team is a board too
    loaded = dataset.load()["red"]
    assert loaded["data_quality_report"]["origin"].tolist() == ["snapshot/av10/AAPL.csv"]
    assert loaded["account_history"] is None
    (red / "07_model_output").mkdir()
    (red / "07_model_output/account_history.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot read '.*account_history.parquet'"):
        dataset.load()
    with pytest.raises(DatasetError, match="competition.teams is empty"):
        dataset.save({})
