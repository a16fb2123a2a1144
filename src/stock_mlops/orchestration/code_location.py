"""One code location's ``Definitions``: its job, schedule, failure alert and resources."""

from __future__ import annotations

from typing import Any

import dagster as dg
from kedro_dagster.config import get_dagster_config

from stock_mlops.orchestration import alerts, kedro_jobs, locations, sessions

# The keys of conf/base/dagster.yml's `jobs`: a team location runs `daily`, the competition
# location runs `competition` (each environment's translation holds both).
DAILY_JOB = "daily"
COMPETITION_JOB = "competition"


def job_name(location: str) -> str:
    """The public job name of a location: ``<team>_daily`` or ``competition``."""
    return COMPETITION_JOB if location == locations.COMPETITION_LOCATION else f"{location}_daily"


def build_definitions(
    location: str, runtime_params: dict[str, Any] | None = None
) -> dg.Definitions:
    """The Definitions of one code location, built from that environment's Kedro project.

    Args:
        location: A team environment, or ``competition``.
        runtime_params: Load-time Kedro runtime parameters; None reads
            ``STOCK_MLOPS_DAGSTER_PARAMS`` (``kedro run --params`` syntax).

    Returns:
        One job (``<team>_daily`` or ``competition``), its session schedule and its failure alert.
        kedro-dagster's assets are listed for lineage only: materialising one alone would run a
        node outside the job's Kedro hooks (no MLflow run).

    Raises:
        OrchestrationConfigError: An unknown location or malformed runtime parameters.
    """
    known = locations.locations()
    if location not in known:
        raise locations.OrchestrationConfigError(
            f"no code location '{location}': the locations are {', '.join(known)} "
            "(a team is a conf/<team>/ folder whose globals.yml names it)"
        )
    env = known[location]
    key = COMPETITION_JOB if location == locations.COMPETITION_LOCATION else DAILY_JOB
    params = locations.runtime_params() if runtime_params is None else runtime_params
    translator = kedro_jobs.ProjectTranslator(env, locations.project_root(), params)
    code_location = translator.translate()
    job_config = get_dagster_config(translator.context).jobs[key]

    named = {name: r for name, r in code_location.named_resources.items() if name != "kedro_run"}
    # MemoryDatasets (the trained model in `training.*`) stay in memory: runs are in-process.
    resources = kedro_jobs.unpartitioned_io_managers(named, env) | {"io_manager": dg.mem_io_manager}
    job = kedro_jobs.session_job(
        code_location.named_jobs[key],
        name=job_name(location),
        pipeline_name=job_config.pipeline.pipeline_name,
        resources=resources,
        on_failure=kedro_jobs.kedro_failure_hook(translator, key),
        location=location,
    )
    configured = code_location.named_schedules.get(key)
    if configured is None:
        raise locations.OrchestrationConfigError(
            f"conf/base/dagster.yml: job '{key}' needs a schedule (its cron after the NYSE close)"
        )
    schedule = sessions.session_schedule(
        job, configured.cron_schedule, configured.execution_timezone
    )
    specs = [
        spec
        for asset in code_location.named_assets.values()
        for spec in (asset.specs if isinstance(asset, dg.AssetsDefinition) else [asset])
    ]
    return dg.Definitions(
        assets=specs,
        jobs=[job],
        schedules=[schedule],
        sensors=[alerts.failure_alert(location, [job])],
        resources=resources,
    )
