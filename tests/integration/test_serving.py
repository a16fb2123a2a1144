"""`make serve` serves the champion with MLflow's scoring protocol; answers equal batch ones."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
import requests
from helpers import free_port, serve_process
from serving_load import JSON, answer_problem, fuzz_cases, run_load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(loop_run, tmp_path_factory):
    """The champion served by `make serve`: its URL and the `make` process (the server's tree)."""
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    version = max(int(v.version) for v in client.search_model_versions("name='stock_mlops_base'"))
    client.set_registered_model_alias("stock_mlops_base", "champion", str(version))
    env = {**os.environ, "MLFLOW_TRACKING_URI": loop_run.tracking_uri}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_process(["TEAM=base"], free_port(), env, timeout=240, log=log) as running:
        yield running


@pytest.fixture(scope="module")
def server(served) -> str:
    return served[0]


def _records(rows: pd.DataFrame) -> list[dict]:
    """Feature rows as JSON records (no date or target columns: the last rows have no target)."""
    dropped = ["date", "target_date", "target_close_1d", "target_return_1d", "target_direction_1d"]
    return rows.drop(columns=dropped).to_dict("records")


def _feature_rows(loop_run) -> pd.DataFrame:
    features = pd.read_parquet(loop_run.root / "04_feature/features.parquet")
    return features[features["date"] == features["date"].max()].reset_index(drop=True)


def test_served_answers_equal_batch_predictions(server, loop_run, tracking):
    rows = _feature_rows(loop_run)
    records = _records(rows)
    response = requests.post(
        f"{server}/invocations", json={"dataframe_records": records}, timeout=60
    )
    assert response.status_code == 200, response.text
    served = [p["prediction"] for p in response.json()["predictions"]]

    # The batch path: the inference pipeline now predicts with the champion. The log also holds
    # make run's rows from the naive champion (version 1), so only the served version counts.
    loop_run.run("inference")
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    champion = client.get_model_version_by_alias("stock_mlops_base", "champion").version
    log = pd.read_parquet(loop_run.root / "07_model_output/predictions.parquet")
    batch = log[log["model_version"] == f"stock_mlops_base/{champion}"].set_index("symbol")
    assert len(batch) == len(rows)
    expected = batch.loc[rows["symbol"], "predicted_return"].to_numpy()
    assert served == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"dataframe_records": [{"symbol": "AAPL"}]}, "rsi_14"),
        ({"no_such_key": []}, "dataframe"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(server, body, fragment):
    response = requests.post(f"{server}/invocations", json=body, timeout=30)
    assert 400 <= response.status_code < 500
    assert fragment in response.text


def test_unknown_symbol_is_a_4xx(server, loop_run):
    record = _records(_feature_rows(loop_run))[0]
    record["symbol"] = "ZZZZ"
    response = requests.post(
        f"{server}/invocations", json={"dataframe_records": [record]}, timeout=30
    )
    assert 400 <= response.status_code < 500
    assert "ZZZZ" in response.text


def test_invalid_json_is_a_4xx(server):
    response = requests.post(
        f"{server}/invocations",
        data="{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500


def _inputs(loop_run) -> list[str]:
    """The served champion's numeric input columns, from its signature."""
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    version = client.get_model_version_by_alias("stock_mlops_base", "champion").version
    info = mlflow.models.get_model_info(f"models:/stock_mlops_base/{version}")
    return [c for c in info.signature.inputs.input_names() if c != "symbol"]


def _expected(server, records: list[dict]) -> list[float]:
    response = requests.post(
        f"{server}/invocations", json={"dataframe_records": records}, timeout=60
    )
    assert response.status_code == 200, response.text
    return [p["prediction"] for p in response.json()["predictions"]]


def test_every_bad_request_gets_a_4xx_naming_the_problem_and_the_server_keeps_answering(
    server, loop_run, tracking
):
    records = _records(_feature_rows(loop_run))
    first, second = _inputs(loop_run)[:2]
    expected = _expected(server, records[:1])
    wrong = {}
    cases = fuzz_cases(records[0], first, second)
    for name, (body, fragment) in cases.items():
        response = requests.post(f"{server}/invocations", data=body, headers=JSON, timeout=120)
        if not (400 <= response.status_code < 500 and fragment in response.text):
            wrong[name] = f"HTTP {response.status_code}, wanted {fragment!r}: {response.text[:300]}"
        after = requests.post(
            f"{server}/invocations", json={"dataframe_records": records[:1]}, timeout=60
        )
        if problem := answer_problem(after, expected):
            wrong[f"a valid request after {name}"] = problem
    assert wrong == {}
    assert len(cases) >= 19


def test_extra_columns_are_ignored_not_used(server, loop_run):
    # Clients send whole feature rows (more columns than the model reads): an unknown column
    # changes nothing, as MLflow's schema enforcement drops it before the model sees the row.
    records = _records(_feature_rows(loop_run))[:1]
    expected = _expected(server, records)
    extra = [{**records[0], "not_a_feature": "x", "another": 1e300}]
    response = requests.post(f"{server}/invocations", json={"dataframe_records": extra}, timeout=60)
    assert answer_problem(response, expected) is None


def test_short_load_every_answer_is_correct(served, loop_run):
    """A few seconds of 8 concurrent clients: no error, every answer parseable and equal to the
    single-client answer; the server's memory is sampled (figures: the benchmark script)."""
    url, process = served
    records = _records(_feature_rows(loop_run))
    expected = _expected(url, records)
    result = run_load(
        url, records, expected, clients=8, seconds=4, max_requests=400, server_pid=process.pid
    )
    assert result.errors == 0 and result.wrong == 0, result.first_errors
    assert result.requests >= 8
    assert result.peak_rss_mb >= result.start_rss_mb > 0
