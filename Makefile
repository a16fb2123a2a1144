# One entry point for users and CI. `make run` and `make test` build .venv/ on first use
# (Python 3.12, the exact pins of requirements.lock.txt) and reuse it afterwards.

VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed
UV_VERSION  := 0.13.9
ENV         ?= base
TEAM        ?= $(ENV)
PORT        ?= 8080
# The offline default tracking store; MLFLOW_TRACKING_URI in the environment wins.
MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow/mlflow.db
MODEL_URI   ?= models:/stock_mlops_$(TEAM)@champion

export MLFLOW_TRACKING_URI
# Python must find this project's interpreter and its console scripts (uvicorn for serving).
export PATH := $(CURDIR)/$(BIN):$(PATH)

START       ?=
END         ?=
TEAMS       ?= red blue
PARAMS      ?=

.PHONY: install run test lint format viz viz-build monitor notebook serve benchmark season dvc-teams clean-venv

install: $(STAMP)

# Rebuilt only when the pins or the package metadata change.
$(STAMP): requirements.in requirements.lock.txt pyproject.toml
	@bash scripts/make_venv.sh "$(VENV)" "$(UV_VERSION)"
	@touch $@

run: $(STAMP)
	$(BIN)/kedro run --env $(ENV)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

# kedro-viz: a static site with dataset previews, served over HTTP (file:// stays blank).
VIZ_PORT    ?= 4141
viz-build: $(STAMP) ## build the kedro-viz site with previews into build/ (no external fonts)
	$(BIN)/python scripts/viz_build.py

viz: $(STAMP) ## build the kedro-viz site, then serve it on http://127.0.0.1:$(VIZ_PORT)/
	$(BIN)/python scripts/viz_build.py --serve $(VIZ_PORT)

# evidently UI on the team's workspace (TEAM=red); telemetry off.
MONITOR_PORT ?= 8000
monitor: $(STAMP) ## evidently UI on the team's monitoring workspace: http://127.0.0.1:$(MONITOR_PORT)/ (TEAM=red)
	$(BIN)/python scripts/monitoring_ui.py --env $(TEAM) --port $(MONITOR_PORT)

# JupyterLab on the notebooks, which read the catalog (KEDRO_ENV=red to read team red's outputs).
notebook: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Serves the team's champion with MLflow's scoring protocol (GET /ping, POST /invocations).
serve: $(STAMP)
	$(BIN)/mlflow models serve -m "$(MODEL_URI)" --env-manager local --host 127.0.0.1 --port $(PORT)

# Replays the daily loop of each team for every NYSE session in START..END, then the competition;
# re-running resumes (days already done are skipped). PARAMS as for kedro run --params.
season: $(STAMP)
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make season START=YYYY-MM-DD END=YYYY-MM-DD [TEAMS=\"red blue\"] [PARAMS=k=v,...]"; exit 2; }
	$(BIN)/python -m stock_mlops.season --start $(START) --end $(END) --teams "$(TEAMS)" --params "$(PARAMS)"

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# DVC cannot list conf/: after adding or removing a team folder, rewrite dvc/teams.yaml (and the
# team's empty parameter files the stages track). Everything else is DVC's own command.
dvc-teams: $(STAMP)
	$(BIN)/python -m stock_mlops.dvc_stages

clean-venv:
	rm -rf $(VENV)
