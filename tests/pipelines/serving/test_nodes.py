"""Serving nodes, and the price model's predict path with a real (linear) MLflow pyfunc.

The Ludwig champion served over HTTP is tested in tests/integration/test_price_serving.py; here
the wrapper's own logic runs in-process: features from a window of bars equal the feature
pipeline's on the full history, and bad requests are refused with a message.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from stock_mlops.core import columns as C
from stock_mlops.core.model_handle import ModelHandle
from stock_mlops.core.params import FeatureEngineeringParams, ServingParams
from stock_mlops.models.price_forecaster import PriceForecaster
from stock_mlops.pipelines.feature_engineering.nodes import build_features
from stock_mlops.pipelines.serving.nodes import NoChampionError, request_price_model

WEIGHTS = {"log_return_1d": 0.5, "rsi_14": 1e-4}


class LinearReturn(mlflow.pyfunc.PythonModel):
    """A fixed linear rule on two features, with the project forecaster's attributes."""

    output_name = C.TARGET_RETURN
    output_type = "number"
    scope = "pooled"

    @property
    def columns(self) -> list[str]:
        return [C.SYMBOL, *WEIGHTS]

    def predict(self, context, model_input, params=None):
        value = sum(w * model_input[c] for c, w in WEIGHTS.items())
        return pd.DataFrame({"prediction": value.to_numpy(dtype=float)})


@pytest.fixture(scope="module")
def price_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("linear") / "model"
    mlflow.pyfunc.save_model(str(folder), python_model=LinearReturn())
    model = PriceForecaster(
        feature_engineering=FeatureEngineeringParams().model_dump(mode="json"),
        model_version="linear/1",
    )
    model.attach(mlflow.pyfunc.load_model(str(folder)))
    return model


def _bars(prices: pd.DataFrame, n: int) -> pd.DataFrame:
    bars = prices.sort_values([C.SYMBOL, C.DATE]).groupby(C.SYMBOL).tail(n)
    return bars[C.PRICE_COLUMNS].assign(date=bars[C.DATE].dt.strftime("%Y-%m-%d"))


def test_no_champion_says_how_one_comes_to_exist(small_prices):
    with pytest.raises(NoChampionError, match="promotion gate"):
        request_price_model(None, small_prices, FeatureEngineeringParams(), ServingParams())


def test_the_request_holds_each_symbol_s_newest_bars(small_prices):
    champion = ModelHandle("stock_mlops_red/3", "registry", lambda: None, uri="models:/x/3")
    params = ServingParams.parse({"min_bars": 50})
    request = request_price_model(champion, small_prices, FeatureEngineeringParams(), params)
    assert request.source is champion and request.min_bars == 50
    counts = request.example_bars.groupby(C.SYMBOL).size()
    assert set(counts) == {50}
    newest = small_prices.groupby(C.SYMBOL)[C.DATE].max()
    assert request.example_bars.groupby(C.SYMBOL)[C.DATE].max().equals(newest)
    assert request.feature_engineering == FeatureEngineeringParams().model_dump(mode="json")


def test_window_features_match_the_full_history(price_model, small_prices):
    bars = _bars(small_prices, 200).sample(frac=1, random_state=0)  # any order
    served = price_model.predict(None, bars).set_index(C.SYMBOL)
    full = build_features(small_prices, FeatureEngineeringParams())
    newest = full[full[C.DATE] == full[C.DATE].max()].set_index(C.SYMBOL)
    expected = sum(w * newest[c] for c, w in WEIGHTS.items())
    assert sorted(served.index) == sorted(small_prices[C.SYMBOL].unique())
    assert served["predicted_return"].to_numpy() == pytest.approx(
        expected.loc[served.index].to_numpy(), rel=1e-5, abs=1e-6
    )
    assert served["prediction"].to_numpy() == pytest.approx(
        (newest.loc[served.index, C.CLOSE] * (1 + expected.loc[served.index])).to_numpy()
    )
    assert set(served["bars_received"]) == {200}
    assert set(served["model_version"]) == {"linear/1"}
    assert set(served["feature_date"]) == {full[C.DATE].max().strftime("%Y-%m-%d")}


@pytest.mark.parametrize(
    ("change", "params", "fragment"),
    [
        (lambda b: b.groupby(C.SYMBOL).tail(60), None, "send at least 200 daily bars"),
        (lambda b: b.groupby(C.SYMBOL).tail(10), {"min_bars": 10}, "no features yet"),
        (lambda b: b, {"min_bars": "many"}, "params.min_bars must be a whole number"),
        (lambda b: b.drop(columns=[C.VOLUME]), None, "bars lack column(s) ['volume']"),
        (lambda b: b.assign(high=float("nan")), None, "high must be finite and positive"),
        (lambda b: b.assign(volume=-1), None, "volume must be finite and not negative"),
        (lambda b: b.assign(date="yesterday"), None, "dates that cannot be read"),
        (lambda b: b.iloc[0:0], None, "no bars were sent"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(
    price_model, small_prices, change, params, fragment
):
    with pytest.raises(MlflowException) as refused:
        price_model.predict(None, change(_bars(small_prices, 200)), params)
    assert fragment in refused.value.message
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_cumulative_feature_cannot_be_served(tmp_path):
    class UsesObv(LinearReturn):
        @property
        def columns(self) -> list[str]:
            return [C.SYMBOL, "obv"]

    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=UsesObv())
    model = PriceForecaster(feature_engineering={})
    with pytest.raises(MlflowException, match="running sum from the first bar"):
        model.attach(mlflow.pyfunc.load_model(str(tmp_path / "m")))
