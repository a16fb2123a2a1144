"""Partitions are the NYSE sessions; schedules request a session's run and skip other days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import exchange_calendars as xcals
import pytest

from stock_mlops.orchestration import sessions

NEW_YORK = ZoneInfo("America/New_York")
TEAM_CRON = "30 17 * * 1-5"


def test_partitions_are_exactly_the_xnys_sessions():
    keys = sessions.nyse_partitions().get_partition_keys(
        current_time=dt.datetime(2026, 12, 1, 12, tzinfo=NEW_YORK)
    )
    xnys = xcals.get_calendar("XNYS")
    expected = [d.strftime("%Y-%m-%d") for d in xnys.sessions_in_range(keys[0], keys[-1])]
    assert keys[0] == sessions.FIRST_SESSION
    assert keys == expected
    # Today's session is already a partition (the schedule runs it after the close).
    assert keys[-1] == "2026-12-01"
    for closure in ("2023-07-04", "2025-01-09", "2018-12-05", "2024-12-25"):
        assert closure not in keys  # Independence Day, two national days of mourning, Christmas


def test_a_range_of_partitions_is_the_sessions_in_it():
    season = sessions.nyse_partitions().get_partition_keys_in_range(
        dg.PartitionKeyRange("2023-06-30", "2023-07-05")
    )
    assert season == ["2023-06-30", "2023-07-03", "2023-07-05"]


@pytest.fixture
def partitioned_job() -> dg.JobDefinition:
    @dg.op
    def noop() -> None:
        pass

    @dg.job(name="red_daily", partitions_def=sessions.nyse_partitions())
    def red_daily() -> None:
        noop()

    return red_daily


def _tick(schedule: dg.ScheduleDefinition, job: dg.JobDefinition, day: dt.date, hour: int = 17):
    # The daemon's view: a partitioned request is resolved against the repository.
    repository = dg.Definitions(jobs=[job], schedules=[schedule]).get_repository_def()
    at = dt.datetime.combine(day, dt.time(hour, 30), tzinfo=NEW_YORK)
    context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=repository)
    return schedule.evaluate_tick(context)


def test_a_session_tick_requests_that_session_once(partitioned_job):
    schedule = sessions.session_schedule(partitioned_job, TEAM_CRON, "America/New_York")
    assert schedule.name == "red_daily_schedule"
    assert schedule.cron_schedule == TEAM_CRON
    assert schedule.execution_timezone == "America/New_York"
    result = _tick(schedule, partitioned_job, dt.date(2023, 7, 3))
    [request] = result.run_requests
    assert request.partition_key == "2023-07-03"
    assert request.tags["dagster/partition"] == "2023-07-03"
    assert request.run_key == "red_daily:2023-07-03"


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (dt.date(2023, 7, 4), "Tuesday"),  # Independence Day
        (dt.date(2023, 7, 1), "Saturday"),
        (dt.date(2025, 1, 9), "Thursday"),  # national day of mourning (President Carter)
    ],
)
def test_a_weekend_or_closure_tick_is_skipped_with_the_reason(partitioned_job, day, why):
    schedule = sessions.session_schedule(partitioned_job, TEAM_CRON, "America/New_York")
    result = _tick(schedule, partitioned_job, day)
    assert result.run_requests == []
    assert result.skip_message == f"{day} ({why}) is not an NYSE session"


def test_the_session_is_the_new_york_day_of_the_tick(partitioned_job):
    # 19:30 in New York is 00:30 the next day in Europe: the session is still New York's.
    schedule = sessions.session_schedule(partitioned_job, "30 0 * * 2-6", "Europe/Berlin")
    repository = dg.Definitions(jobs=[partitioned_job], schedules=[schedule]).get_repository_def()
    at = dt.datetime(2023, 7, 6, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=repository)
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2023-07-05"


def test_schedules_start_stopped_unless_the_deployment_says_so(partitioned_job, monkeypatch):
    monkeypatch.delenv(sessions.SCHEDULES_ENV_VAR, raising=False)
    stopped = sessions.session_schedule(partitioned_job, TEAM_CRON, None)
    assert stopped.default_status == dg.DefaultScheduleStatus.STOPPED
    assert stopped.execution_timezone == "America/New_York"
    monkeypatch.setenv(sessions.SCHEDULES_ENV_VAR, "1")
    running = sessions.session_schedule(partitioned_job, TEAM_CRON, None)
    assert running.default_status == dg.DefaultScheduleStatus.RUNNING
