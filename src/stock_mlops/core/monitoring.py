"""What the monitoring pipeline hands to its evidently workspace dataset (a typed request)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MonitoringRun:
    """One monitoring run of one team, to be stored in the team's evidently project.

    The workspace keeps one set of snapshots per ``run_date``: saving a run for a date already
    stored replaces that date's snapshots instead of adding more.

    Attributes:
        project: The evidently project's name (the team).
        run_date: The session the run describes (the snapshots' timestamps).
        snapshots: Kind (``drift``, ``quality``) -> evidently ``Snapshot``.
        dashboard: The project's evidently ``DashboardModel`` (saved whole on every run).
        description: The project's description.
    """

    project: str
    run_date: dt.date
    snapshots: dict[str, Any]
    dashboard: Any = None
    description: str = ""
