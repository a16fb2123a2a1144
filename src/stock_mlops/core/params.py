"""Typed, validated parameters: a typo or a wrong value fails when the run starts, not mid-run.

Each pipeline owns one top-level key (``conf/base/parameters_<pipeline>.yml``) and one model
here. There is one way for parameters to reach a node: the node's argument is annotated with its
model (``def build_features(prices, params: FeatureEngineeringParams)``) and Kedro 1.x validates and
instantiates it. The project hook additionally validates the whole tree once at start-up
(:func:`validate_parameters`), because Kedro checks only the sections some node asks for: an
unknown top-level key (``--params tradin.threshold=0.01``) would otherwise pass unnoticed.

Every model here is the single definition of its keys; ``conf/base`` holds their values.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ParameterError(ValueError):
    """Raised when parameters do not validate; the message names every offending key."""


class _Section(BaseModel):
    """Base of every parameter section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, section: str = "") -> Self:
        """Validates a raw parameter dict, raising ParameterError with dotted key names."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError as exc:
            raise ParameterError(_format_errors(exc, section, cls)) from None


def _format_errors(exc: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in (prefix, *err["loc"]) if part != "")
        message = f"parameter '{key}': {err['msg']}"
        if err["type"] == "extra_forbidden" and model is not None:
            known = _known_keys(model, err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            message += f"; did you mean '{close[0]}'?" if close else f" (known: {sorted(known)})"
        lines.append(message)
    return "invalid parameters:\n  " + "\n  ".join(lines)


def _known_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names of the (nested) section at ``path`` below ``model``."""
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        # Optional sections (``TrainingParams | None``): use the model inside the union.
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _symbol_list(value: Any) -> Any:
    # `--params` splits on commas, so a CLI list arrives as "AAPL MSFT" or "AAPL;MSFT".
    if isinstance(value, str):
        value = value.replace(";", " ").split()
    return value


# ---------------------------------------------------------------------------- data ingestion
class AlphaVantageParams(_Section):
    base_url: str = "https://www.alphavantage.co/query"
    function: Literal["TIME_SERIES_DAILY", "TIME_SERIES_DAILY_ADJUSTED"] = (
        "TIME_SERIES_DAILY_ADJUSTED"
    )
    datatype: Literal["json", "csv"] = "json"
    calls_per_minute: float = Field(5, gt=0)
    daily_budget: int = Field(25, gt=0)
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff_seconds: float = Field(2.0, ge=0)
    # A compact response holds the latest 100 bars; beyond that gap a full fetch is needed.
    compact_window_days: int = Field(100, gt=0)

    @field_validator("base_url")
    @classmethod
    def _no_query(cls, url: str) -> str:
        # The key is added per request from the environment; a query here could carry it into
        # stored manifests.
        if "?" in url:
            raise ValueError(
                "base_url must not contain a query string (the key comes from ALPHAVANTAGE_API_KEY)"
            )
        return url


class AlpacaDataParams(_Section):
    feed: Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"] = "iex"
    start_date: dt.date = dt.date(2016, 1, 1)
    url_override: str | None = None
    timeout_seconds: float = Field(30, gt=0)


class ValidationParams(_Section):
    # Bars whose absolute close-to-close move looks like an unrecorded split (unadjusted series).
    split_jump_min_move: float = Field(0.4, gt=0, lt=1)
    split_ratio_tolerance: float = Field(0.03, gt=0, lt=0.5)
    # A symbol whose last bar is this many sessions behind the newest symbol is stale.
    max_stale_sessions: int = Field(3, ge=0)
    # Missing sessions (against the NYSE calendar) above this share quarantine the symbol.
    max_missing_session_ratio: float = Field(0.02, ge=0, le=1)
    min_rows: int = Field(60, gt=0)


class DataIngestionParams(_Section):
    source: Literal["bundled", "csv", "alphavantage", "alpaca"] = "bundled"
    symbols: list[str] = Field(default_factory=list)
    csv_dir: str | None = None
    # Regex with a (?P<symbol>...) group matched against file names; None = the file's stem.
    csv_symbol_regex: str | None = None
    start_date: dt.date | None = None
    alphavantage: AlphaVantageParams = AlphaVantageParams()
    alpaca: AlpacaDataParams = AlpacaDataParams()
    validation: ValidationParams = ValidationParams()

    _split_symbols = field_validator("symbols", mode="before")(_symbol_list)

    @field_validator("symbols")
    @classmethod
    def _normalise_symbols(cls, symbols: list[str]) -> list[str]:
        cleaned = [s.strip().upper() for s in symbols if s.strip()]
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"duplicate symbols in {cleaned}")
        return cleaned

    @model_validator(mode="after")
    def _csv_needs_dir(self) -> DataIngestionParams:
        if self.source == "csv" and not self.csv_dir:
            raise ValueError("source 'csv' needs data_ingestion.csv_dir")
        if self.source in ("alphavantage", "alpaca") and not self.symbols:
            raise ValueError(f"source '{self.source}' needs data_ingestion.symbols")
        return self


# ----------------------------------------------------------------------- feature engineering
class MacdParams(_Section):
    fast: int = Field(12, gt=1)
    slow: int = Field(26, gt=1)
    signal: int = Field(9, gt=1)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError(f"macd.fast ({self.fast}) must be below macd.slow ({self.slow})")
        return self


class BollingerParams(_Section):
    window: int = Field(20, gt=1)
    num_std: float = Field(2.0, gt=0)


class IndicatorParams(_Section):
    rsi_window: int = Field(14, gt=1)
    ema_window: int = Field(10, gt=1)
    sma_window: int = Field(10, gt=1)
    dema_window: int = Field(10, gt=1)
    macd: MacdParams = MacdParams()
    bollinger: BollingerParams = BollingerParams()
    atr_window: int = Field(14, gt=1)
    log_return_windows: list[int] = Field(default_factory=lambda: [1, 5, 20])
    volatility_window: int = Field(20, gt=1)
    volume_zscore_window: int = Field(20, gt=1)

    @field_validator("log_return_windows")
    @classmethod
    def _positive_windows(cls, windows: list[int]) -> list[int]:
        if not windows or any(w < 1 for w in windows):
            raise ValueError(f"log_return_windows must be positive integers, got {windows}")
        return sorted(set(windows))


class TargetParams(_Section):
    # |next-day return| at or below this band is labelled "flat".
    direction_band: float = Field(0.001, ge=0)


class FeatureEngineeringParams(_Section):
    indicators: IndicatorParams = IndicatorParams()
    targets: TargetParams = TargetParams()
    calendar_features: bool = True


# ----------------------------------------------------------------------------------- training
class SplitParams(_Section):
    """Explicit, chronological split: train <= train_end < validation <= validation_end < test."""

    train_end: dt.date
    validation_end: dt.date
    test_end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SplitParams:
        if not self.train_end < self.validation_end:
            raise ValueError("training.split.train_end must be before validation_end")
        if self.test_end is not None and not self.validation_end < self.test_end:
            raise ValueError("training.split.validation_end must be before test_end")
        return self


class WalkForwardParams(_Section):
    # Expanding window; one fold per calendar year of test data starting here.
    first_test_year: int = 2019
    last_test_year: int | None = None
    # The last months before each test year validate (early stopping) and are not trained on.
    validation_months: int = Field(6, ge=1, le=24)


class PromotionParams(_Section):
    metric: Literal["mae_return"] = "mae_return"
    # The candidate must be better than both by at least this relative margin.
    min_improvement: float = Field(0.0, ge=0)


class TrainingParams(_Section):
    ludwig_config: str
    scope: Literal["per_symbol", "pooled"] = "per_symbol"
    split: SplitParams
    evaluation_mode: Literal["holdout", "walk_forward"] = "holdout"
    walk_forward: WalkForwardParams = WalkForwardParams()
    ridge_alpha: float = Field(1.0, ge=0)
    random_seed: int = 42
    promotion: PromotionParams = PromotionParams()


# ---------------------------------------------------------------------------------- inference
class InferenceParams(_Section):
    # champion_or_latest: the registry's champion, else the newest model trained locally.
    model_source: Literal["champion", "latest", "champion_or_latest"] = "champion_or_latest"


# ------------------------------------------------------------------------------------ trading
class RiskParams(_Section):
    max_weight_per_symbol: float = Field(1.0, gt=0, le=1)
    max_orders_per_run: int = Field(20, ge=0)
    min_cash_buffer: float = Field(0.0, ge=0, le=1)
    # An order's reference price may differ from the last close by at most this fraction.
    max_price_deviation: float = Field(0.2, gt=0)
    kill_switch: bool = False


class LocalBrokerParams(_Section):
    initial_cash: float = Field(100_000.0, gt=0)
    fill_at: Literal["close", "next_open"] = "close"
    commission_bps: float = Field(0.0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)


class AlpacaBrokerParams(_Section):
    url_override: str | None = None
    timeout_seconds: float = Field(10, gt=0)


class TradingParams(_Section):
    broker: Literal["local", "alpaca"] = "local"
    mode: Literal["regression", "classification"] = "regression"
    threshold: float = Field(0.005, ge=0)
    sizing: Literal["all_in", "equal_weight", "max_weight"] = "all_in"
    top_k: int = Field(1, ge=1)
    fractional_shares: bool = False
    live: bool = False
    risk: RiskParams = RiskParams()
    local: LocalBrokerParams = LocalBrokerParams()
    alpaca: AlpacaBrokerParams = AlpacaBrokerParams()


# ----------------------------------------------------------------------------------- backtest
class BacktestParams(_Section):
    # Default period: the training split's test period (after validation_end).
    start_date: dt.date | None = None
    end_date: dt.date | None = None


# --------------------------------------------------------------------------------- monitoring
class MonitoringParams(_Section):
    # Drift compares the last `current_sessions` of features with the `reference_sessions` before.
    current_sessions: int = Field(60, gt=1)
    reference_sessions: int = Field(250, gt=1)


# -------------------------------------------------------------------------------- competition
class CompetitionParams(_Section):
    teams: dict[str, str] = Field(default_factory=dict)
    start_date: dt.date | None = None
    n_days: int | None = Field(None, gt=0)
    bootstrap_samples: int = Field(2000, ge=100)
    bootstrap_block: int = Field(5, ge=1)
    random_seed: int = 7


# ------------------------------------------------------------------------------------ serving
class ServingParams(_Section):
    # Daily bars per symbol a prediction-from-prices request must send: from 200 bars the
    # newest row's features are within ~1e-5 standard deviations of the full-history ones
    # (MACD and RSI/ATR smoothing converge slowly; see models/price_forecaster.py).
    min_bars: int = Field(200, ge=2, le=5000)


# ------------------------------------------------------------------------------------ the tree
class ProjectParams(_Section):
    """The whole parameter tree: an unknown top-level key (a CLI typo) is an error too."""

    team: str = "base"
    storage_root: str = "data"
    run_date: dt.date | None = None
    data_ingestion: DataIngestionParams = DataIngestionParams()
    feature_engineering: FeatureEngineeringParams = FeatureEngineeringParams()
    training: TrainingParams | None = None
    inference: InferenceParams = InferenceParams()
    trading: TradingParams = TradingParams()
    backtest: BacktestParams = BacktestParams()
    monitoring: MonitoringParams = MonitoringParams()
    competition: CompetitionParams = CompetitionParams()
    serving: ServingParams = ServingParams()


def validate_parameters(raw: dict[str, Any]) -> ProjectParams:
    """Validates the complete parameter tree of a run.

    Args:
        raw: Kedro's merged parameters (base + env + runtime ``--params``).

    Returns:
        The typed tree.

    Raises:
        ParameterError: Naming every invalid or unknown key.
    """
    return ProjectParams.parse(raw)
