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

.PHONY: install run test lint format viz notebook serve benchmark clean-venv

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

viz: $(STAMP)
	$(BIN)/kedro viz build

# JupyterLab on the notebooks, which read the catalog (KEDRO_ENV=red to read team red's outputs).
notebook: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Serves the team's champion with MLflow's scoring protocol (GET /ping, POST /invocations).
serve: $(STAMP)
	$(BIN)/mlflow models serve -m "$(MODEL_URI)" --env-manager local --host 127.0.0.1 --port $(PORT)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Dagster (kedro-dagster): the webserver and the daemon on 127.0.0.1, one code location per team
# environment plus the competition, written from conf/ at every start (a new conf/<team>/ folder
# is a new location). The instance lives in .dagster/ (git-ignored except its dagster.yaml).
# `dagster dev` shares one code server per location between the webserver and the daemon.
DAGSTER_HOME ?= $(CURDIR)/.dagster
DAGSTER_PORT ?= 3000
.PHONY: orchestrate
orchestrate: $(STAMP) ## Dagster UI and daemon on http://127.0.0.1:$(DAGSTER_PORT)/ (schedules, backfills)
	$(BIN)/python -m stock_mlops.orchestration workspace --python "$(CURDIR)/$(BIN)/python" \
		--output "$(DAGSTER_HOME)/workspace.yaml"
	DAGSTER_HOME="$(DAGSTER_HOME)" $(BIN)/dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) \
		-w "$(DAGSTER_HOME)/workspace.yaml"

clean-venv:
	rm -rf $(VENV)
