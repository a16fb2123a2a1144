"""Which Dagster code locations exist, the workspace that lists them, and load-time parameters.

Nothing here imports Dagster: ``python -m stock_mlops.orchestration workspace`` runs on every
``make orchestrate`` and container start, so a new ``conf/<team>/`` folder becomes a location
without any edit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

COMPETITION_LOCATION = "competition"
# Load-time Kedro runtime parameters for every location, in `kedro run --params` syntax.
PARAMS_ENV_VAR = "STOCK_MLOPS_DAGSTER_PARAMS"
DEFINITIONS_MODULE = "stock_mlops.definitions"


class OrchestrationConfigError(ValueError):
    """A configuration mistake in the orchestration's settings (named, no traceback needed)."""


def project_root() -> Path:
    """The Kedro project holding the working directory, else this package's checkout."""
    from kedro.utils import find_kedro_project  # noqa: PLC0415

    return find_kedro_project(Path.cwd()) or Path(__file__).resolve().parents[3]


def team_locations() -> list[str]:
    """Every team environment (``conf/<env>`` whose ``globals.yml`` names a team), sorted."""
    from stock_mlops.settings import team_environments  # noqa: PLC0415

    return team_environments()


def competition_env() -> str:
    """The environment ``kedro run --pipelines competition`` uses (Kedro's default run env)."""
    from stock_mlops.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

    return str(CONFIG_LOADER_ARGS.get("default_run_env") or "local")


def locations() -> dict[str, str]:
    """Code location name -> the Kedro environment it loads (teams first, then competition)."""
    return {team: team for team in team_locations()} | {COMPETITION_LOCATION: competition_env()}


def workspace_yaml(python: str | None = None) -> str:
    """The text of a Dagster ``workspace.yaml``: one ``python_module`` location per environment.

    Args:
        python: The interpreter that runs each location's code server (``executable_path``);
            None keeps Dagster's default (the interpreter running Dagster).

    Returns:
        YAML text; the ``attribute`` of each entry names the location in
        ``stock_mlops.definitions``.
    """
    entries = []
    for location in locations():
        entry: dict[str, str] = {
            "module_name": DEFINITIONS_MODULE,
            "attribute": location,
            "location_name": location,
            "working_directory": str(project_root()),
        }
        if python:
            entry["executable_path"] = python
        entries.append({"python_module": entry})
    return yaml.safe_dump({"load_from": entries}, sort_keys=False)


def runtime_params(text: str | None = None) -> dict[str, Any]:
    """Load-time runtime parameters, parsed as ``kedro run --params`` parses its value.

    ``storage_root=/srv/red,data_ingestion.symbols=AAPL MSFT`` gives
    ``{"storage_root": "/srv/red", "data_ingestion": {"symbols": "AAPL MSFT"}}``.

    Args:
        text: The value; None reads ``STOCK_MLOPS_DAGSTER_PARAMS``.

    Returns:
        The nested parameters (empty when unset).

    Raises:
        OrchestrationConfigError: An item without ``key=value``.
    """
    from omegaconf import OmegaConf  # noqa: PLC0415

    text = os.environ.get(PARAMS_ENV_VAR, "") if text is None else text
    dot_list = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise OrchestrationConfigError(
                f"{PARAMS_ENV_VAR}: item '{item}' must be key=value "
                "(as `kedro run --params`: comma-separated, lists space-separated)"
            )
        dot_list.append(f"{key.strip()}={value}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list)) if dot_list else {}
