"""Starts ``evidently ui`` on 127.0.0.1 on a team's evidently workspace (``make monitor``).

    python scripts/monitoring_ui.py --env red --port 8000
    python scripts/monitoring_ui.py --workspace data/red/08_reporting/evidently_workspace

The workspace is the ``monitoring_workspace`` catalog entry resolved for the team's environment
(``--storage-root`` overrides the environment's ``storage_root``, as ``--params`` would).
Telemetry is off: without ``DO_NOT_TRACK`` the server posts an event to evidently's servers on
every API call.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import fsspec
from kedro.config import OmegaConfigLoader

from stock_mlops.settings import CONFIG_LOADER_ARGS

PROJECT = Path(__file__).resolve().parents[1]


def workspace_path(env: str, storage_root: str | None = None) -> str:
    """The resolved ``path`` of ``monitoring_workspace`` in environment ``env``.

    Args:
        env: A Kedro environment (``base`` or a team folder under ``conf/``).
        storage_root: Overrides the environment's ``storage_root``.

    Returns:
        The workspace's path or URL.

    Raises:
        SystemExit: When ``env`` is not a folder of ``conf/``.
    """
    conf = PROJECT / "conf"
    if not (conf / env).is_dir():
        known = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name != "local")
        raise SystemExit(f"unknown environment '{env}': choose one of {known} (TEAM=...)")
    loader = OmegaConfigLoader(
        conf_source=str(conf),
        env=None if env == "base" else env,
        runtime_params={"storage_root": storage_root} if storage_root else {},
        **CONFIG_LOADER_ARGS,
    )
    return str(loader["catalog"]["monitoring_workspace"]["path"])


def main(argv: list[str] | None = None) -> None:
    """Resolves the workspace, checks it exists and replaces this process with the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", help="team environment (default base)")
    parser.add_argument("--storage-root", default="", help="overrides storage_root")
    parser.add_argument("--workspace", default="", help="a workspace path or URL instead")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    workspace = args.workspace or workspace_path(args.env, args.storage_root or None)
    if "://" not in workspace and not Path(workspace).is_absolute():
        workspace = str(PROJECT / workspace)
    if not fsspec.core.url_to_fs(workspace)[0].exists(workspace):
        raise SystemExit(
            f"no evidently workspace at {workspace} yet: run the monitoring pipeline first "
            f"(.venv/bin/kedro run --env {args.env} --pipelines monitoring)"
        )
    evidently = str(Path(sys.executable).with_name("evidently"))
    sys.stderr.write(f"evidently UI on http://127.0.0.1:{args.port}/ ({workspace})\n")
    os.environ["DO_NOT_TRACK"] = "1"
    command = ["ui", "--workspace", workspace, "--host", "127.0.0.1", "--port", str(args.port)]
    os.execv(evidently, [evidently, *command])


if __name__ == "__main__":
    main()
