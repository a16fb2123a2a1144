"""The run-failure alert: a log line always, and a JSON POST to a webhook when one is configured.

The webhook (Slack, Mattermost, Teams or any HTTP endpoint taking ``{"text": ...}``) comes from
``STOCK_MLOPS_ALERT_WEBHOOK_URL``; it is a secret of the deployment, never configuration.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request

import dagster as dg

logger = logging.getLogger(__name__)

WEBHOOK_ENV_VAR = "STOCK_MLOPS_ALERT_WEBHOOK_URL"
WEBHOOK_TIMEOUT_SECONDS = 10


def failure_text(run: dg.DagsterRun, error: str) -> str:
    """One line naming the job, the session and the error of a failed run."""
    session = run.tags.get("dagster/partition", "no session")
    first_line = (error or "no error message").strip().splitlines()[0][:500]
    return (
        f"[stock-mlops] {run.job_name} failed for session {session} "
        f"(run {run.run_id}): {first_line}"
    )


def post_alert(text: str, url: str | None = None) -> bool:
    """Logs ``text`` as an error and POSTs ``{"text": text}`` to the webhook, if any.

    Args:
        text: The alert.
        url: The webhook; None reads ``STOCK_MLOPS_ALERT_WEBHOOK_URL`` (empty: no webhook).

    Returns:
        Whether a webhook accepted the alert (False without a webhook or when it failed: an
        alert never fails the sensor, the failure is logged instead).
    """
    logger.error(text)
    url = url if url is not None else os.environ.get(WEBHOOK_ENV_VAR, "")
    if not url:
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # The URL itself is a secret (Slack's carries its token): name only the failure.
        logger.error("the alert webhook (%s) did not accept the alert: %s", WEBHOOK_ENV_VAR, exc)
        return False
    return True


def failure_alert(location: str, jobs: list[dg.JobDefinition]) -> dg.SensorDefinition:
    """``<location>_run_failure_alert``: alerts once per failed run of ``jobs``.

    It runs in the daemon, so it sees runs that died before any step (a run worker killed, a
    code server unreachable) as well as failed steps. A run that Dagster will retry still alerts:
    the team learns about a flaky day too.
    """

    @dg.run_failure_sensor(
        name=f"{location}_run_failure_alert",
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Logs and posts (${WEBHOOK_ENV_VAR}) every failed run of {location}.",
    )
    def _alert(context: dg.RunFailureSensorContext) -> None:
        text = failure_text(context.dagster_run, context.failure_event.message or "")
        context.log.error(text)
        post_alert(text)

    return _alert
