"""The season command with several teams side by side: each team's summary and the total."""

from __future__ import annotations

import json

from stock_mlops.season import days_of, main, season_sessions

SESSIONS = season_sessions("2023-07-03", "2023-07-06")  # the 4th of July is a holiday


def test_the_days_a_team_ran_come_from_its_progress_lines():
    lines = [
        "INFO some log line",
        "red: day 1 of 3 (2023-07-03) in 61.2 s; elapsed 1:01, about 2:02 left for red",
        "red: day 3 of 3 (2023-07-06) in 9.1 s; elapsed 1:10, about 0:00 left for red",
        "season: 2 daily runs, 1 already done",
    ]
    assert days_of(lines, SESSIONS) == (["2023-07-03", "2023-07-06"], ["2023-07-05"])


def test_side_by_side_teams_report_their_own_and_the_total_days(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Every day done already (markers written): the processes start, skip, and report.
    for team in ("red", "blue"):
        (tmp_path / team / "season").mkdir(parents=True)
        for day in SESSIONS:
            record = {"team": team, "run_date": day, "seconds": 1.0}
            (tmp_path / team / "season" / f"{day}.json").write_text(json.dumps(record))
    argv = ["--start", SESSIONS[0], "--end", SESSIONS[-1], "--teams", "red blue"]
    code = main([*argv, "--storage-prefix", str(tmp_path), "--no-competition"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "red: season: 0 daily runs, 3 already done" in lines
    assert "blue: season: 0 daily runs, 3 already done" in lines
    assert lines[-1] == "season: 0 daily runs, 6 already done"
