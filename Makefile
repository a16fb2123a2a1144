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

.PHONY: help install run test lint format viz viz-build monitor notebook serve price-model serve-prices ui \
	benchmark season dvc-teams clean-venv

# `make` alone lists the targets: each line is the `## ` comment on a target's rule.
.DEFAULT_GOAL := help
help: ## list the targets, one line each
	@awk -F':.*## ' '/^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## create .venv/ with the pinned packages (Python 3.12; reused when up to date)

# Rebuilt only when the pins or the package metadata change.
$(STAMP): requirements.in requirements.lock.txt pyproject.toml
	@bash scripts/make_venv.sh "$(VENV)" "$(UV_VERSION)"
	@touch $@

run: $(STAMP) ## the daily loop of one team offline (ENV=red|blue; default base)
	$(BIN)/python -m stock_mlops --env $(ENV)

test: $(STAMP) ## ruff, then the whole test suite (what CI runs)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/pytest

lint: $(STAMP) ## ruff check and format check, no changes
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP) ## ruff format and the fixable lint rules, in place
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
notebook: $(STAMP) ## JupyterLab on notebooks/ (KEDRO_ENV=red reads team red's outputs)
	$(BIN)/jupyter lab notebooks/

# The notebook run against the team's outputs and exported as one page that opens offline
# (plotly.js inline once, none of nbconvert's CDN scripts).
.PHONY: notebook-html
notebook-html: $(STAMP) ## run the notebook on the team's outputs, export it to build/notebooks/ (opens offline)
	$(if $(filter-out base,$(ENV)),KEDRO_ENV=$(ENV)) $(BIN)/python notebooks/export_html.py \
		--output build/notebooks/explore_outputs-$(ENV).html

# Serves the team's champion with MLflow's scoring protocol (GET /ping, POST /invocations with
# feature rows). The check first says clearly when the registry has no such model or alias.
serve: $(STAMP) ## serve MODEL_URI (default: the team's champion) on 127.0.0.1, PORT=8080
	@$(BIN)/python -m stock_mlops.registry_check "$(MODEL_URI)"
	$(BIN)/mlflow models serve -m "$(MODEL_URI)" --env-manager local --host 127.0.0.1 --port $(PORT)

# Replays the daily loop of each team for every NYSE session in START..END, then the competition;
# re-running resumes (days already done are skipped). PARAMS as for kedro run --params.
season: $(STAMP) ## replay the daily loop START..END for TEAMS, then the competition (resumes)
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make season START=YYYY-MM-DD END=YYYY-MM-DD [TEAMS=\"red blue\"] [PARAMS=k=v,...]"; exit 2; }
	$(BIN)/python -m stock_mlops.season --start $(START) --end $(END) --teams "$(TEAMS)" --params "$(PARAMS)"

# Prediction from prices: the champion wrapped with the project's feature code, registered as
# stock_mlops_<team>_prices (alias champion). Rebuild after the champion moves.
PRICE_MODEL_URI ?= models:/stock_mlops_$(TEAM)_prices@champion
price-model: $(STAMP) ## register the team's champion as a model that takes OHLCV bars
	$(BIN)/kedro run --pipelines serving --env $(ENV)

serve-prices: price-model ## build, then serve prediction from recent OHLCV bars on 127.0.0.1, PORT=8080
	@$(BIN)/python -m stock_mlops.registry_check "$(PRICE_MODEL_URI)"
	$(BIN)/mlflow models serve -m "$(PRICE_MODEL_URI)" --env-manager local --host 127.0.0.1 --port $(PORT)

# The MLflow UI on the tracking store, on loopback: one worker and no GenAI job runner (whose
# consumer processes outlive a plain kill of the server), no telemetry. It opens in "GenAI" mode;
# the printed link goes straight to the team's runs table in "Model training" mode.
UI_PORT ?= 5000
ui: $(STAMP) ## the MLflow UI on 127.0.0.1, UI_PORT=5000; prints the team's runs link
	@# SQLite does not create folders: the default store's, before the first `make run`.
	$(if $(filter sqlite:///$(CURDIR)/mlflow/mlflow.db,$(MLFLOW_TRACKING_URI)),@mkdir -p mlflow/artifacts)
	@$(BIN)/python -m stock_mlops.tracking_ui "stock_mlops_$(TEAM)" "http://127.0.0.1:$(UI_PORT)"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true \
	  $(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port $(UI_PORT) --workers 1

benchmark: $(STAMP) ## every script in benchmarks/ (the README's measured figures)
	$(BIN)/python benchmarks/run_all.py

# DVC cannot list conf/: after adding or removing a team folder, rewrite dvc/teams.yaml (and the
# team's empty parameter files the stages track). Everything else is DVC's own command.
dvc-teams: $(STAMP) ## rewrite dvc/teams.yaml from the team folders under conf/
	$(BIN)/python -m stock_mlops.dvc_stages

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

clean-venv: ## delete .venv/
	rm -rf $(VENV)
