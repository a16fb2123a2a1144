"""The served models refuse non-finite numbers before predicting (MLflow's scoring server turns
their refusal into HTTP 400; an infinite prediction would not even be valid JSON)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from stock_mlops.models.forecaster import StockForecaster
from stock_mlops.models.naive import NaiveForecaster


def _forecaster() -> StockForecaster:
    # No Ludwig archive: the checks come before any model is loaded.
    return StockForecaster(
        archives={},
        input_columns=["log_return_1d", "rsi_14"],
        output_name="target_return_1d",
        output_type="number",
        scope="per_symbol",
        metadata={},
        input_example=[],
    )


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_forecaster_refuses_infinite_features_naming_the_column(value):
    rows = pd.DataFrame(
        {"symbol": ["AAPL", "MSFT"], "log_return_1d": [0.01, value], "rsi_14": 50.0}
    )
    with pytest.raises(
        MlflowException, match=r"infinite values in column\(s\) \['log_return_1d'\]"
    ):
        _forecaster().predict(None, rows)


@pytest.mark.parametrize("close", [math.inf, -1.0, float("nan")])
def test_naive_forecaster_refuses_a_close_that_is_not_a_finite_positive_number(close):
    rows = pd.DataFrame({"symbol": ["AAPL"], "close": [close]})
    with pytest.raises(MlflowException, match="close must be a finite positive number"):
        NaiveForecaster().predict(None, rows)


def test_naive_forecaster_still_answers_finite_rows():
    rows = pd.DataFrame({"symbol": ["AAPL", "MSFT"], "close": [190.0, 375.0]})
    assert NaiveForecaster().predict(None, rows)["prediction"].tolist() == [0.0, 0.0]
