"""``python -m stock_mlops.orchestration workspace [--python PATH] [--output FILE]``.

Writes the Dagster workspace: one code location per team environment and the competition.
``make orchestrate`` and the container's entrypoint run it at every start, so a new
``conf/<team>/`` folder is a new location after a restart, with no edit anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stock_mlops.orchestration.locations import locations, workspace_yaml


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m stock_mlops.orchestration")
    commands = parser.add_subparsers(dest="command", required=True)
    workspace = commands.add_parser("workspace", help="write the Dagster workspace.yaml")
    workspace.add_argument("--python", help="interpreter of the code servers (executable_path)")
    workspace.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)

    text = workspace_yaml(python=args.python)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_name(f".{args.output.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(args.output)  # a running daemon never reads half a workspace
    sys.stderr.write(f"{args.output}: code locations {', '.join(locations())}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
