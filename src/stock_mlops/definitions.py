"""What Dagster loads: one ``Definitions`` per code location (replaces ``kedro dagster init``'s
template, which builds a single ``env="local"`` location).

A ``workspace.yaml`` entry names the location in its ``attribute``
(``python_module: {module_name: stock_mlops.definitions, attribute: red}``); the attribute is
built on first access (PEP 562), so a code server loads only its own Kedro environment. Write
the workspace with ``python -m stock_mlops.orchestration workspace``.

``defs`` (what ``dg check defs`` and ``dagster dev -m stock_mlops.definitions`` find) is the
location of ``KEDRO_ENV`` (a team), or the competition when it is unset.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg


@functools.cache
def _definitions(location: str) -> dg.Definitions:
    # Dagster's loader calls hasattr() and then getattr(): build each location once.
    from stock_mlops.orchestration.code_location import build_definitions  # noqa: PLC0415

    return build_definitions(location)


def __getattr__(name: str) -> dg.Definitions:
    from stock_mlops.orchestration import locations  # noqa: PLC0415

    if name == "defs":
        env = os.environ.get("KEDRO_ENV") or ""
        team = env if env in locations.team_locations() else locations.COMPETITION_LOCATION
        return _definitions(team)
    if not name.startswith("_") and name in locations.locations():
        return _definitions(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # Autodiscovery lists dir() and wants exactly one Definitions: expose `defs` alone.
    return sorted([*globals(), "defs"])
