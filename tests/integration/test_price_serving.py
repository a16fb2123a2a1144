"""Prediction from prices: the champion registered with the project's feature code, served by
`make serve` (a real `mlflow models serve` on loopback), answers from recent daily bars with the
batch predictions, and refuses too few bars or malformed ones with a 4xx and a message."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
import requests
from helpers import free_port, make_serve, run_kedro

pytestmark = pytest.mark.slow

PRICE_MODEL = "stock_mlops_base_prices"


@pytest.fixture(scope="module")
def price_model(loop_run):
    """The champion (the loop's newest version) wrapped for prediction from prices."""
    client = mlflow.MlflowClient(tracking_uri=loop_run.tracking_uri)
    version = max(int(v.version) for v in client.search_model_versions("name='stock_mlops_base'"))
    client.set_registered_model_alias("stock_mlops_base", "champion", str(version))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", loop_run.tracking_uri)
        run_kedro("serving", params=loop_run.params())
    built = client.get_model_version_by_alias(PRICE_MODEL, "champion")
    assert built.tags["source_model"] == f"models:/stock_mlops_base/{version}"
    return f"models:/stock_mlops_base/{version}"


@pytest.fixture(scope="module")
def server(loop_run, price_model):
    env = {**os.environ, "MLFLOW_TRACKING_URI": loop_run.tracking_uri}
    model = f"MODEL_URI=models:/{PRICE_MODEL}@champion"
    with make_serve([model], free_port(), env, timeout=400) as url:
        yield url


def _bars(loop_run, n: int) -> pd.DataFrame:
    prices = pd.read_parquet(loop_run.root / "03_primary/prices.parquet")
    bars = prices.sort_values(["symbol", "date"]).groupby("symbol").tail(n).copy()
    bars["date"] = bars["date"].dt.strftime("%Y-%m-%d")
    return bars


def _post(server, bars: pd.DataFrame, **params) -> requests.Response:
    body = {"dataframe_records": bars.to_dict("records")}
    if params:
        body["params"] = params
    return requests.post(f"{server}/invocations", json=body, timeout=300)


def test_bars_in_batch_predictions_out(server, loop_run, price_model):
    response = _post(server, _bars(loop_run, 200))
    assert response.status_code == 200, response.text[-2000:]
    served = pd.DataFrame(response.json()["predictions"]).set_index("symbol")
    assert sorted(served.index) == ["AAPL", "MSFT", "NVDA"]
    assert set(served["feature_date"]) == {"2023-12-29"}
    assert set(served["target_date"]) == {"2024-01-02"}  # the next NYSE session
    assert set(served["bars_received"]) == {200}
    # The batch path: the champion on the feature pipeline's rows of the same date.
    features = pd.read_parquet(loop_run.root / "04_feature/features.parquet")
    rows = features[features["date"] == features["date"].max()].set_index("symbol")
    champion = mlflow.pyfunc.load_model(price_model)
    columns = champion.unwrap_python_model().columns
    batch = champion.predict(rows.reset_index()[columns])["prediction"].to_numpy()
    expected = pd.Series(batch, index=rows.index)  # returns (target_return_1d)
    assert served["predicted_return"].to_numpy() == pytest.approx(
        expected.loc[served.index].to_numpy(), rel=1e-6, abs=1e-7
    )
    assert served["prediction"].to_numpy() == pytest.approx(
        (rows.loc[served.index, "close"] * (1 + expected.loc[served.index])).to_numpy(), rel=1e-6
    )
    assert set(served["model_version"]) == {price_model.removeprefix("models:/")}


def test_too_few_bars_are_refused_with_the_number_needed(server, loop_run):
    response = _post(server, _bars(loop_run, 60))
    assert response.status_code == 400
    assert "send at least 200 daily bars per symbol" in response.text
    assert "'AAPL': 60" in response.text
    # A client may accept less precision for itself, down to the indicators' warm-up.
    assert _post(server, _bars(loop_run, 60), min_bars=60).status_code == 200
    response = _post(server, _bars(loop_run, 20), min_bars=20)
    assert response.status_code == 400 and "no features yet" in response.text


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda b: b.drop(columns=["volume"]), "volume"),
        (lambda b: b.assign(close=-1.0), "close must be finite and positive"),
        (lambda b: b.assign(date="not a date"), "date"),
    ],
)
def test_malformed_bars_get_a_4xx_with_a_message(server, loop_run, change, fragment):
    response = _post(server, change(_bars(loop_run, 200)))
    assert 400 <= response.status_code < 500
    assert fragment in response.text
    assert requests.get(f"{server}/ping", timeout=10).status_code == 200
