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
                inputs={"teams": "params:competition.teams"},
                outputs="team_outputs",
                name="request_team_outputs_node",
            ),
            Node(
                func=rank_teams,
                inputs={"team_outputs": "team_outputs", "params": "params:competition"},
                outputs=["leaderboard", "team_comparisons"],
                name="rank_teams_node",
            ),
            Node(
                func=render_leaderboard,
                inputs={
                    "leaderboard": "leaderboard",
                    "team_comparisons": "team_comparisons",
                    "team_outputs": "team_outputs",
                },
                outputs="leaderboard_report",
                name="render_leaderboard_node",
            ),
        ],
        outputs={"team_outputs", "leaderboard", "team_comparisons", "leaderboard_report"},
        parameters={"params:competition", "params:competition.teams"},
        namespace="competition",
    )
