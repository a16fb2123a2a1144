"""The real command line in subprocesses: configuration mistakes end in one short message with a
"did you mean" where one fits and exit code 2, with no traceback and nothing run; documented
commands print no deprecation warning."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import mlflow
import pytest
import yaml
from helpers import PROJECT

# Real subprocesses of `kedro run`: each pays the CLI's start-up (about 15-40 s here).
pytestmark = pytest.mark.slow

TINY = {
    "input_features": [{"name": "log_return_1d", "type": "number"}],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
}
LUDWIG_FILES = {
    "broken.yaml": "input_features:\n  - {name: log_return_1d, type: number\noutput_features: [\n",
    "unknown_key.yaml": yaml.safe_dump({"model": {"type": "mlp"}, **TINY}),
    "not_a_column.yaml": yaml.safe_dump(
        {**TINY, "input_features": [{"name": "rsi_41", "type": "number"}]}
    ),
}
# case -> (arguments after `kedro run`, fragments the message must contain)
CASES = {
    "unknown parameter": (
        ["--pipelines", "data_ingestion", "--params", "trading.treshold=0.01"],
        ["parameter 'trading.treshold'", "did you mean 'threshold'?"],
    ),
    "bad value": (
        ["--pipelines", "data_ingestion", "--params", "trading.threshold=abc"],
        ["parameter 'trading.threshold'", "valid number"],
    ),
    "unknown pipeline": (
        ["--pipelines", "trainig"],
        ["unknown pipeline 'trainig'; did you mean 'training'?", "competition"],
    ),
    "unknown environment": (
        ["--env", "green", "--pipelines", "data_ingestion"],
        ["unknown environment 'green'", "conf/green", "base, blue, local, red"],
    ),
    "Ludwig YAML that does not parse": (
        ["--pipelines", "training", "--params", "training.ludwig_config={dir}/broken.yaml"],
        ["broken.yaml is not valid YAML", "line 3"],
    ),
    "key Ludwig does not know": (
        ["--pipelines", "training", "--params", "training.ludwig_config={dir}/unknown_key.yaml"],
        ["unknown top-level key(s) ['model']", "did you mean 'model_type'?"],
    ),
    "input that is not a feature column": (
        ["--pipelines", "training", "--params", "training.ludwig_config={dir}/not_a_column.yaml"],
        ["'rsi_41' is not a column of features", "did you mean 'rsi_14'?"],
    ),
}
SUCCESS = ["--pipelines", "data_ingestion,feature_engineering"]


def _kedro_run(arguments: list[str], root, tracking_uri: str) -> subprocess.CompletedProcess:
    """One `kedro run`, storing under ``root`` (which a refused run never creates)."""
    params = f"storage_root={root},data_ingestion.symbols=AAPL"
    if "--params" in arguments:
        at = arguments.index("--params") + 1
        arguments = [*arguments[:at], f"{params},{arguments[at]}", *arguments[at + 1 :]]
    else:
        arguments = [*arguments, "--params", params]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "COLUMNS": "200"}
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [str(PROJECT / ".venv" / "bin" / "kedro"), "run", *arguments],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run once, as many at a time as there are cores."""
    base = tmp_path_factory.mktemp("cli")
    for name, text in LUDWIG_FILES.items():
        (base / name).write_text(text)
    jobs = {
        case: [a.replace("{dir}", str(base)) for a in arguments]
        for case, (arguments, _) in CASES.items()
    }
    jobs["success"] = SUCCESS
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        # One tracking store each: processes creating one SQLite store at once race on its schema.
        futures = {
            case: pool.submit(_kedro_run, arguments, base / _slug(case), _store(base, case))
            for case, arguments in jobs.items()
        }
        done = {case: future.result() for case, future in futures.items()}
    return {"runs": done, "base": base}


def _slug(case: str) -> str:
    return case.replace(" ", "_")


def _store(base, case: str) -> str:
    return f"sqlite:///{base / _slug(case)}.db"


@pytest.mark.parametrize("case", list(CASES))
def test_a_configuration_mistake_is_one_short_message(outcomes, case):
    done = outcomes["runs"][case]
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert "Traceback" not in output and "╭─" not in output, output[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    message = done.stderr[done.stderr.index("Error: ") :]
    for fragment in CASES[case][1]:
        assert fragment in message, message
    assert len(message) < 1500  # short: the available columns, not a dump
    # Refused before any node ran: no dataset was read, nothing was stored.
    assert "Running node" not in output
    assert not (outcomes["base"] / _slug(case)).exists()
    # ... and before kedro-mlflow starts a run: no run is left open in the tracking store.
    client = mlflow.MlflowClient(tracking_uri=_store(outcomes["base"], case))
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert not experiments or client.search_runs(experiments) == []


def test_documented_commands_print_no_deprecation_or_replacement_warning(outcomes):
    done = outcomes["runs"]["success"]
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Pipeline execution completed successfully" in output
    for noise in ("DeprecationWarning", "deprecated", "Replacing dataset", "Traceback"):
        assert noise not in output, noise
    client = mlflow.MlflowClient(tracking_uri=_store(outcomes["base"], "success"))
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "base · data_ingestion+feature_engineering · 2023-12-29"
