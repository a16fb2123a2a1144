"""The competition pipeline reads the teams' storage roots and writes the leaderboard."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import run_kedro

pytestmark = pytest.mark.slow


def test_competition_ranks_two_team_roots(loop_run, tracking, tmp_path):
    red, blue = tmp_path / "red", tmp_path / "blue"
    shutil.copytree(loop_run.root, red)
    shutil.copytree(loop_run.root, blue)
    # Blue's backtest lost money every day after the first: red must lead, clearly.
    equity = pd.read_parquet(blue / "07_model_output/backtest_equity.parquet")
    equity["equity"] = equity["equity"].iloc[0] * 0.999 ** np.arange(len(equity))
    equity.to_parquet(blue / "07_model_output/backtest_equity.parquet")
    (blue / "08_reporting/backtest_metrics.json").write_text('{"sharpe": -5.0}')

    run_kedro(
        "competition",
        params={
            "storage_root": str(tmp_path / "house"),
            "competition": {"teams": {"red": str(red), "blue": str(blue)}},
        },
    )
    board = pd.read_csv(tmp_path / "house/08_reporting/leaderboard.csv")
    assert board["team"].tolist() == ["red", "blue"]
    assert board["oos_n"].iloc[0] == board["oos_n"].iloc[1] > 0
    assert set(board["ranked_on"]) == {"backtest"}
    # The loop's backtest ran the permutation test; the board shows its share.
    assert 0 <= board["permutation_share"].iloc[0] <= 1
    assert (board["universe"] == "mag7").all()
    # The teams' experiments (stock_mlops_red/blue) hold no training run in this store.
    assert "no training run found in 'stock_mlops_red'" in board["trials_note"].iloc[0]
    page = (tmp_path / "house/08_reporting/leaderboard.html").read_text()
    assert "Leaderboard" in page and "red vs blue" in page


def test_competition_right_after_make_run_gives_a_board_not_a_key_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_kedro(
        "competition",
        params={
            "storage_root": str(tmp_path / "house"),
            "competition": {
                "teams": {"red": str(tmp_path / "red"), "blue": str(tmp_path / "blue")}
            },
        },
    )
    board = pd.read_csv(tmp_path / "house/08_reporting/leaderboard.csv")
    assert sorted(board["team"]) == ["blue", "red"]
    page = (tmp_path / "house/08_reporting/leaderboard.html").read_text()
    assert "No team has results yet" in page
