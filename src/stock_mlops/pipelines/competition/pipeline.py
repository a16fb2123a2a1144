"""Wiring of the competition pipeline."""

from kedro.pipeline import Node, Pipeline

from stock_mlops.pipelines.competition.nodes import (
    rank_teams,
    render_leaderboard,
    request_team_outputs,
)


def create_pipeline(**kwargs) -> Pipeline:
    """each team's outputs -> leaderboard table, comparisons and an HTML page."""
    return Pipeline(
        [
            Node(
                func=request_team_outputs,
                inputs="params:competition",
                outputs="team_outputs",
                name="request_team_outputs_node",
            ),
            Node(
                func=rank_teams,
                inputs=["team_outputs", "params:competition"],
                outputs=["leaderboard", "team_comparisons"],
                name="rank_teams_node",
            ),
            Node(
                func=render_leaderboard,
                inputs=["leaderboard", "team_comparisons", "team_outputs"],
                outputs="leaderboard_report",
                name="render_leaderboard_node",
            ),
        ]
    )
