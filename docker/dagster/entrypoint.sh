#!/bin/sh
# Writes the Dagster workspace from the conf/ folders (one code location per team environment and
# the competition), then runs the container's command (dagster-webserver or dagster-daemon).
set -eu
python -m stock_mlops.orchestration workspace --output /opt/dagster/workspace.yaml
exec "$@"
