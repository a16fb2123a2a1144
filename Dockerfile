# One image for every team: the project with its pinned set, and the Dagster webserver and daemon
# that run any team's jobs (docker-compose.yml: services dagster-webserver and dagster-daemon).
#   docker build -t stock-mlops .
# The layout follows Dagster's "Deploying Dagster using Docker Compose": DAGSTER_HOME holds
# dagster.yaml, the webserver and the daemon are two containers of the same image.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEDRO_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    DAGSTER_STORAGE_DIR=/var/lib/dagster/storage \
    DAGSTER_COMPUTE_LOGS_DIR=/var/lib/dagster/compute_logs

WORKDIR /opt/dagster/app

# The pinned set in its own layer (rebuilt only when the pins change), installed as
# scripts/make_venv.sh installs it: requirements.in at the exact versions of requirements.lock.txt.
# TA-Lib's manylinux wheel carries its C library; nothing is compiled.
COPY requirements.in requirements.lock.txt ./
RUN pip install --no-cache-dir "uv==0.13.9" \
 && uv pip install --system --no-cache -r requirements.in -c requirements.lock.txt

# The Kedro project. conf/ is also mounted by docker-compose.yml, so a new conf/<team>/ folder
# needs a restart, not a rebuild. conf/local and data are left out (.dockerignore).
COPY pyproject.toml README.md dg.toml .telemetry ./
COPY src ./src
COPY conf ./conf
RUN uv pip install --system --no-cache --no-deps -e . \
 && mkdir -p "$DAGSTER_HOME" "$DAGSTER_STORAGE_DIR" "$DAGSTER_COMPUTE_LOGS_DIR"
COPY docker/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY docker/dagster/entrypoint.sh /usr/local/bin/stock-mlops-dagster

EXPOSE 3000
# Writes workspace.yaml from conf/ (one code location per team and the competition), then runs
# the command.
ENTRYPOINT ["stock-mlops-dagster"]
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/workspace.yaml"]
