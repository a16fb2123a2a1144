"""Prediction from prices: a pyfunc that takes recent daily bars and predicts the next session.

A client sends OHLCV bars per symbol (``symbol, date, open, high, low, close, volume``); the
model builds the features with the project's own feature code (``build_features``, the
function the feature_engineering pipeline runs, with the team's parameters as of the build),
keeps each symbol's newest row and asks the wrapped forecaster, which is a copy of a registered
model version (the team's champion when it was built), whatever pyfunc that is. The answer has
the prediction log's columns, so a served answer equals the batch prediction for the same bars.

How many bars: the features of the newest bar must equal the ones computed from the whole
history, and exponentially smoothed indicators (MACD and its signal line, RSI and ATR's Wilder
smoothing) remember every earlier bar with a weight that only decays. Measured on the bundled
data (7 symbols, 25 dates over 2021-2023, ``benchmarks/bench_cli_and_serving.py``), the newest
row's features from the last N bars differ from the full-history ones by at most, in standard
deviations of each feature: 0.49 (60 bars), 0.02 (100), 4.5e-4 (150), 8.6e-6 (200), 2.3e-7
(250); MACD's histogram is the slowest. So ``min_bars`` defaults to 200 daily bars per symbol
(about ten months); fewer are refused with HTTP 400, and a request may lower it for itself with
the ``min_bars`` param, never below what the longest indicator window needs to produce a row.
``obv`` is a running sum from the first bar sent, so it never converges: a forecaster that uses
it is refused when this model is built.

The feature code is the one step that crosses layers: ``models/`` does not import pipelines, and
this module imports ``build_features`` only when predicting, from the project code bundled with
the model (``code_paths``), so the served features are the ones the model was built with.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from stock_mlops.core import columns as C

# Bars per symbol for features within ~1e-5 standard deviations of the full-history ones.
DEFAULT_MIN_BARS = 200
# Features that depend on every bar since the first one sent: not servable from a window.
CUMULATIVE_FEATURES = ("obv",)
FORECASTER_ARTIFACT = "forecaster"
OUTPUT_COLUMNS = [
    C.SYMBOL,
    "feature_date",
    C.TARGET_DATE,
    "last_close",
    "prediction",
    "predicted_return",
    "predicted_direction",
    "bars_received",
    "model_version",
]


class PriceForecaster(mlflow.pyfunc.PythonModel):
    """Input: daily bars of one or more symbols, any order. Output: one row per symbol.

    Args:
        feature_engineering: ``params:feature_engineering`` as plain data (windows, band).
        min_bars: Bars each symbol must have (see the module docstring).
        model_version: The wrapped model's registry version (``stock_mlops_red/3``).
    """

    def __init__(
        self,
        *,
        feature_engineering: dict[str, Any],
        min_bars: int = DEFAULT_MIN_BARS,
        model_version: str = "",
    ) -> None:
        self.feature_engineering = feature_engineering
        self.min_bars = min_bars
        self.model_version = model_version
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # the wrapped model is an artifact, loaded by load_context
        return state

    def load_context(self, context: Any) -> None:
        self.attach(mlflow.pyfunc.load_model(context.artifacts[FORECASTER_ARTIFACT]))

    def attach(self, model: Any) -> None:
        """Uses ``model`` (a loaded pyfunc) as the wrapped forecaster.

        Raises:
            MlflowException: When the forecaster cannot be served from a window of bars.
        """
        wrapped = model.unwrap_python_model()
        missing = [a for a in ("columns", "output_name", "output_type") if not hasattr(wrapped, a)]
        if missing:
            raise MlflowException.invalid_parameter_value(
                f"the wrapped model {type(wrapped).__name__} lacks {missing}: prediction from "
                "prices needs a project forecaster (stock_mlops.core.model_handle.Forecaster)"
            )
        cumulative = [c for c in wrapped.columns if c in CUMULATIVE_FEATURES]
        if cumulative:
            raise MlflowException.invalid_parameter_value(
                f"the forecaster uses {cumulative}, a running sum from the first bar sent: it "
                "cannot be computed from a window of recent bars"
            )
        self._model = model

    @property
    def forecaster(self) -> Any:
        """The wrapped project forecaster (columns, output name and type, scope)."""
        if self._model is None:
            raise MlflowException("the price model is not loaded (load_context was not called)")
        return self._model.unwrap_python_model()

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """The next session's prediction for every symbol in ``model_input``.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE (HTTP 400) naming what is wrong with the
                bars: missing columns, values that are not finite positive prices, too few bars.
        """
        from stock_mlops.core.params import FeatureEngineeringParams  # noqa: PLC0415
        from stock_mlops.core.targets import direction, implied_close  # noqa: PLC0415
        from stock_mlops.pipelines.feature_engineering.nodes import (  # noqa: PLC0415
            build_features,
        )

        min_bars = _min_bars(params, self.min_bars)
        bars = _bars(model_input)
        counts = bars.groupby(C.SYMBOL)[C.DATE].nunique()
        short = counts[counts < min_bars]
        if len(short):
            raise MlflowException.invalid_parameter_value(
                f"send at least {min_bars} daily bars per symbol (features from fewer differ "
                f"from the full-history ones); got {short.astype(int).to_dict()}"
            )
        parameters = FeatureEngineeringParams.parse(self.feature_engineering)
        try:
            features = build_features(bars, parameters)
        except ValueError as exc:
            if "warm-up" not in str(exc):
                raise MlflowException.invalid_parameter_value(f"bars rejected: {exc}") from None
            # No symbol has a row past the warm-up: the same answer as when only some lack one.
            features = bars.iloc[0:0]
        newest = bars.groupby(C.SYMBOL)[C.DATE].max()
        newest_of_row = newest.reindex(features[C.SYMBOL]).to_numpy()
        rows = features[features[C.DATE].to_numpy() == newest_of_row]
        unready = sorted(set(newest.index) - set(rows[C.SYMBOL]))
        if unready:
            raise MlflowException.invalid_parameter_value(
                f"too few bars for {unready}: the newest bar has no features yet (the longest "
                f"indicator warm-up needs more bars); send at least {self.min_bars}"
            )
        rows = rows.reset_index(drop=True)
        forecaster = self.forecaster
        raw = self._model.predict(rows[forecaster.columns])["prediction"]
        raw.index = rows.index
        close = implied_close(forecaster.output_name, raw, rows[C.CLOSE])
        predicted_return = close / rows[C.CLOSE] - 1
        predicted_direction = (
            raw.astype(object)
            if forecaster.output_type == "category"
            else direction(predicted_return, parameters.targets.direction_band)
        )
        return pd.DataFrame(
            {
                C.SYMBOL: rows[C.SYMBOL].astype(str),
                "feature_date": rows[C.DATE].dt.strftime("%Y-%m-%d"),
                C.TARGET_DATE: pd.to_datetime(rows[C.TARGET_DATE]).dt.strftime("%Y-%m-%d"),
                "last_close": rows[C.CLOSE].astype(float),
                "prediction": close.astype(float),
                "predicted_return": predicted_return.astype(float),
                "predicted_direction": predicted_direction.astype(object),
                "bars_received": counts.reindex(rows[C.SYMBOL]).to_numpy(dtype=np.int64),
                "model_version": self.model_version,
            }
        )[OUTPUT_COLUMNS]


def _min_bars(params: dict[str, Any] | None, default: int) -> int:
    value = (params or {}).get("min_bars", default)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
        raise MlflowException.invalid_parameter_value(
            f"params.min_bars must be a whole number of bars of at least 2, got {value!r}"
        )
    return int(value)


def _bars(model_input: Any) -> pd.DataFrame:
    """The request's bars, typed and checked: every price finite and positive."""
    frame = pd.DataFrame(model_input)
    missing = [c for c in C.PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise MlflowException.invalid_parameter_value(
            f"bars lack column(s) {missing}; each bar needs {C.PRICE_COLUMNS}"
        )
    if frame.empty:
        raise MlflowException.invalid_parameter_value("no bars were sent")
    bars = frame[C.PRICE_COLUMNS].copy()
    bars[C.SYMBOL] = bars[C.SYMBOL].astype(str)
    dates = pd.to_datetime(bars[C.DATE], errors="coerce", utc=True)
    if dates.isna().any():
        bad = frame.loc[dates.isna(), C.DATE].head(3).tolist()
        raise MlflowException.invalid_parameter_value(f"dates that cannot be read: {bad}")
    bars[C.DATE] = dates.dt.tz_localize(None).dt.normalize()
    for column in [*C.OHLC, C.VOLUME]:
        values = pd.to_numeric(bars[column], errors="coerce").astype(float)
        floor_ok = values >= 0 if column == C.VOLUME else values > 0
        bad = ~(np.isfinite(values) & floor_ok)
        if bad.any():
            symbols = sorted(set(bars.loc[bad, C.SYMBOL]))
            kind = "finite and not negative" if column == C.VOLUME else "finite and positive"
            raise MlflowException.invalid_parameter_value(
                f"{column} must be {kind}; {int(bad.sum())} bar(s) of {symbols} are not"
            )
        bars[column] = values
    return bars


def example_bars(prices: pd.DataFrame, symbol: str, n_bars: int) -> pd.DataFrame:
    """A request's worth of one symbol's newest bars (the model's input example), dates as text.

    Args:
        prices: The ``prices`` dataset.
        symbol: The symbol.
        n_bars: How many of its newest bars.

    Returns:
        The bars, oldest first, with the request's columns.
    """
    rows = prices[prices[C.SYMBOL] == symbol].sort_values(C.DATE).tail(n_bars)
    rows = rows[C.PRICE_COLUMNS].reset_index(drop=True)
    rows[C.DATE] = pd.to_datetime(rows[C.DATE]).dt.strftime("%Y-%m-%d")
    for column in [*C.OHLC, C.VOLUME]:
        rows[column] = rows[column].astype(float)
    return rows
