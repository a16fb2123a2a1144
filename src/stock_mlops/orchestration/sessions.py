"""NYSE sessions as Dagster partitions, and schedules that run only on sessions.

A partition key is a session date ``YYYY-MM-DD`` and becomes the run's ``run_date``. The sessions
come from exchange-calendars' XNYS calendar (through :mod:`stock_mlops.core.calendar`), so
holidays and unscheduled closures are never hand-kept here.
"""

from __future__ import annotations

import datetime as dt
import functools
import os

import dagster as dg
import pandas as pd

from stock_mlops.core import calendar

# The first partition. Earlier run dates are possible with `kedro run`, but a model needs years of
# labelled rows before it (the bundled prices start in 2013).
FIRST_SESSION = "2015-01-02"
# Schedules start stopped on a developer's machine; a deployment sets this to 1.
SCHEDULES_ENV_VAR = "STOCK_MLOPS_SCHEDULES_RUNNING"


@functools.cache
def nyse_partitions() -> dg.TimeWindowPartitionsDefinition:
    """One partition per NYSE session from :data:`FIRST_SESSION` (weekdays minus closures).

    The calendar knows closures up to about a year ahead (exchange-calendars' default end), and a
    code location computes them when it loads: every deployment or reload refreshes them.
    """
    sessions = calendar.sessions_between(pd.Timestamp(FIRST_SESSION), pd.Timestamp("2200-01-01"))
    weekdays = pd.bdate_range(FIRST_SESSION, sessions[-1])
    closures = weekdays.difference(sessions)
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=FIRST_SESSION,
        fmt="%Y-%m-%d",
        timezone=str(calendar.NEW_YORK),
        # Today's session is a partition from midnight, so its schedule can run it after the close.
        end_offset=1,
        exclusions=[closure.to_pydatetime() for closure in closures],
    )


def session_schedule(
    job: dg.JobDefinition, cron_schedule: str, execution_timezone: str | None
) -> dg.ScheduleDefinition:
    """``<job>_schedule``: at ``cron_schedule``, the run of that New York day if it is a session.

    Args:
        job: A job partitioned by :func:`nyse_partitions`.
        cron_schedule: When to evaluate (from ``conf/base/dagster.yml``), e.g. ``30 17 * * 1-5``.
        execution_timezone: The cron's time zone (None: New York).

    Returns:
        A schedule whose tick requests partition ``<that day>`` on a session and skips, with the
        reason, on a weekend or a closure. ``run_key`` is ``<job>:<day>``: a tick evaluated twice
        never starts the day twice.
    """
    running = os.environ.get(SCHEDULES_ENV_VAR) == "1"

    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone=execution_timezone or str(calendar.NEW_YORK),
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"{job.name} for each NYSE session, after the close ({cron_schedule}).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        when = context.scheduled_execution_time or dt.datetime.now(tz=calendar.NEW_YORK)
        day = when.astimezone(calendar.NEW_YORK).date()
        if not calendar.is_session(pd.Timestamp(day)):
            return dg.SkipReason(f"{day} ({day:%A}) is not an NYSE session")
        key = day.isoformat()
        return dg.RunRequest(run_key=f"{job.name}:{key}", partition_key=key)

    return _schedule
