"""The competition pipeline reads two teams' storage roots and writes the leaderboard."""

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
    page = (tmp_path / "house/08_reporting/leaderboard.html").read_text()
    assert "Red versus blue" in page and "red vs blue" in page
