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

from stock_mlops.core.symbols import validate_symbols
from stock_mlops.core.vocabulary import FeatureKind


class ParameterError(ValueError):
    """Raised when parameters do not validate; the message names every offending key."""


class _Section(BaseModel):
    """Base of every parameter section: unknown keys are errors, values are immutable, and every
    number is finite (``inf`` or ``nan`` would pass any bound check and break later runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
    # One-day outliers that revert (validation.check_spikes): a move of at least this log
    # return, this many robust standard deviations out, undone by this share the next day.
    spike_min_move: float = Field(0.4, gt=0)
    spike_robust_sigmas: float = Field(10.0, gt=0)
    spike_revert_share: float = Field(0.5, gt=0, le=1)
    spike_action: Literal["quarantine", "note"] = "quarantine"


class DataIngestionParams(_Section):
    source: Literal["bundled", "csv", "alphavantage", "alpaca"] = "bundled"
    # Which bundled snapshot source=bundled reads (src/stock_mlops/snapshot/<universe>/).
    universe: Literal["mag7", "av10"] = "mag7"
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
        # Symbols become folder names in the raw archive: refuse anything but a plain name.
        return validate_symbols(cleaned)

    @model_validator(mode="after")
    def _csv_needs_dir(self) -> DataIngestionParams:
        if self.universe != "mag7" and self.source != "bundled":
            raise ValueError(
                f"universe '{self.universe}' is a bundled snapshot; it needs source 'bundled', "
                f"not '{self.source}'"
            )
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
    """Fixed dates, by target date: train <= train_end < validation <= validation_end < gate
    <= gate_end < test <= test_end. Used when ``training.window`` is null."""

    train_end: dt.date
    validation_end: dt.date
    # The gate slice decides promotion; null: the six months after validation_end.
    gate_end: dt.date | None = None
    test_end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SplitParams:
        if not self.train_end < self.validation_end:
            raise ValueError("training.split.train_end must be before validation_end")
        if self.gate_end is not None and not self.validation_end < self.gate_end:
            raise ValueError("training.split.validation_end must be before gate_end")
        last = self.gate_end or self.validation_end
        if self.test_end is not None and not last < self.test_end:
            raise ValueError("training.split.test_end must be after gate_end and validation_end")
        return self


class WindowParams(_Section):
    """A split counted in NYSE sessions back from ``run_date`` (the newest labelled rows are the
    test slice, then the gate, then validation; training gets the rest)."""

    validation_sessions: int = Field(125, ge=10)
    gate_sessions: int = Field(125, ge=10)
    test_sessions: int = Field(125, ge=1)
    # null: every earlier labelled row (an expanding window); else the newest N before validation.
    train_sessions: int | None = Field(None, ge=60)


class RetrainParams(_Section):
    """When the daily loop retrains; between retrains it reuses the champion."""

    every_sessions: int = Field(20, ge=1)
    # Retrain the day after monitoring raised an alert (drift or degraded accuracy) ...
    on_monitoring_alert: bool = True
    # ... once the model trained last has served this many sessions. Monitoring's windows are
    # longer (60 sessions), so an alert soon after a training mostly judges the predecessor's
    # predictions, and drift against a multi-year training window persists after a retrain:
    # without a cool-down a lasting alert retrains every other session.
    alert_cooldown_sessions: int = Field(10, ge=0)


class WalkForwardParams(_Section):
    # Expanding window; one fold per calendar year of test data starting here.
    first_test_year: int = 2019
    last_test_year: int | None = None
    # The last months before each test year validate (early stopping) and are not trained on.
    validation_months: int = Field(6, ge=1, le=24)


class PromotionParams(_Section):
    metric: Literal["mae_return"] = "mae_return"
    # The candidate's loss must be lower than naive's and the champion's by at least this
    # relative margin on the gate slice ...
    min_improvement: float = Field(0.0, ge=0, lt=1)
    # ... and significantly so: one-sided p-value of the test below this.
    max_p_value: float = Field(0.05, gt=0, le=1)
    # diebold_mariano: per-date loss differential, Newey-West variance, Harvey-Leybourne-Newbold
    # correction; block_bootstrap: stationary bootstrap of the same differential (arch).
    test: Literal["diebold_mariano", "block_bootstrap"] = "diebold_mariano"
    bootstrap_samples: int = Field(2000, ge=200)
    # Fewer gate dates than this: no decision can be made (the candidate is not promoted).
    min_gate_dates: int = Field(20, ge=5)


class DaskParams(_Section):
    """Where ``training.executor: dask`` runs its per-symbol tasks."""

    # tcp://host:8786 of a running scheduler; null: Dask's own ``scheduler-address`` setting
    # (the DASK_SCHEDULER_ADDRESS environment variable), else a LocalCluster started by the run.
    scheduler_address: str | None = None
    # LocalCluster only: worker processes (null: one per core, divided by torch_threads).
    n_workers: int | None = Field(None, ge=1)
    # Torch threads per task: workers run one task each, so cores are not oversubscribed.
    torch_threads: int = Field(1, ge=1)
    # LocalCluster only: memory per worker ("auto": the machine's memory divided by workers).
    memory_limit: str = "auto"
    # LocalCluster only: how often a task may lose its worker (a crash, a kill) before the run
    # stops; Dask's own default is 3, which repeats a task that runs a worker out of memory.
    allowed_failures: int = Field(1, ge=0)


class TrainingParams(_Section):
    ludwig_config: str
    scope: Literal["per_symbol", "pooled"] = "per_symbol"
    # serial: every model in this process, one after the other; dask: one task per model
    # (symbol, walk-forward fold, hyperopt search) on a Dask cluster (see ``dask``).
    executor: Literal["serial", "dask"] = "serial"
    dask: DaskParams = DaskParams()
    split: SplitParams
    # Sessions back from run_date; null: the fixed dates of ``split``.
    window: WindowParams | None = WindowParams()
    retrain: RetrainParams = RetrainParams()
    evaluation_mode: Literal["holdout", "walk_forward"] = "holdout"
    walk_forward: WalkForwardParams = WalkForwardParams()
    ridge_alpha: float = Field(1.0, ge=0)
    random_seed: int = 42
    promotion: PromotionParams = PromotionParams()


# ---------------------------------------------------------------------------------- inference
class InferenceParams(_Section):
    # champion (default): the model that passed the gate (at first the naive forecaster).
    # latest: the newest model trained into this storage root, even one the gate refused (the
    # log says so); champion_or_latest: the champion, else the newest local model.
    model_source: Literal["champion", "latest", "champion_or_latest"] = "champion"


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
    fill_at: Literal["close", "next_open"] = "next_open"
    # fill_at: close is a look-ahead (see below); it is refused unless this says it is meant.
    allow_close_fill: bool = False
    commission_bps: float = Field(0.0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _no_silent_look_ahead(self) -> LocalBrokerParams:
        if self.fill_at == "close" and not self.allow_close_fill:
            raise ValueError(
                "fill_at 'close' fills each order at the very close its decision was computed "
                "from, a price no order placed after that close can get (look-ahead: returns "
                "and Sharpe ratios come out too good); use 'next_open', or set "
                "trading.local.allow_close_fill: true to accept the look-ahead knowingly"
            )
        return self


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
class PermutationParams(_Section):
    # Shuffles of each symbol's predicted returns across dates (0: no permutation test).
    samples: int = Field(300, ge=0, le=100_000)
    # The exact fast replay covers sizing all_in only; other rules replay the real decision
    # function for every shuffle (about 2 s each on the bundled data), so fewer of them.
    replay_samples: int = Field(20, ge=0, le=10_000)
    random_seed: int = 7


class BacktestParams(_Section):
    # Default period: the training split's test period (after validation_end).
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    # Annual risk-free rate (compounded daily) that every Sharpe ratio is in excess of.
    risk_free_rate: float = Field(0.0, ge=-0.1, le=1.0)
    # Block bootstrap of days for the Sharpe ratio's confidence interval.
    bootstrap: Literal["stationary", "circular"] = "stationary"
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    random_seed: int = 7
    permutation: PermutationParams = PermutationParams()


# --------------------------------------------------------------------------------- monitoring
class DriftParams(_Section):
    # Drift is measured on the features of these kinds (the registry declares each feature's
    # kind): scale-free quantities whose distribution can change for a reason. Price levels,
    # price differences, OBV and calendar fields "drift" whenever prices move or months pass.
    feature_kinds: list[FeatureKind] = Field(
        default_factory=lambda: ["return", "oscillator", "zscore", "volatility"], min_length=1
    )
    # evidently's per-column method and threshold: Wasserstein distance in units of the
    # reference's standard deviation (drift when above); "ks" would be a p-value (drift below).
    method: Literal["wasserstein", "psi", "jensenshannon", "kl_div", "ks"] = "wasserstein"
    threshold: float = Field(0.1, gt=0)
    # The drift test fails when this share of the monitored features or more has drifted.
    max_share: float = Field(0.5, gt=0, le=1)


class QualityParams(_Section):
    # The MAE test fails when the model's MAE on return reaches this multiple of the naive
    # (no-change) forecast's MAE on the same rows.
    max_mae_ratio_to_naive: float = Field(1.1, gt=0)
    # The directional test warns (never alerts) when accuracy falls this far below the always-up
    # base rate of the same rows.
    direction_tolerance: float = Field(0.05, ge=0, le=1)


class MonitoringParams(_Section):
    # The current window: the newest `current_sessions` up to run_date.
    current_sessions: int = Field(60, gt=1)
    # Drift reference when the deployed model's training window is unknown: the sessions before
    # the current window.
    reference_sessions: int = Field(250, gt=1)
    drift: DriftParams = DriftParams()
    quality: QualityParams = QualityParams()


# -------------------------------------------------------------------------------- competition
class CompetitionParams(_Section):
    teams: dict[str, str] = Field(default_factory=dict)
    start_date: dt.date | None = None
    n_days: int | None = Field(None, gt=0)
    bootstrap_samples: int = Field(2000, ge=100)
    # arch's stationary or circular block bootstrap; block length null = Politis-White.
    bootstrap: Literal["stationary", "circular"] = "stationary"
    bootstrap_block: int | None = Field(None, ge=1)
    random_seed: int = 7
    # Annual risk-free rate of the Sharpe ratios compared (the live record's and the backtests').
    risk_free_rate: float = Field(0.0, ge=-0.1, le=1.0)
    # Teams are ranked on their paper-trading record once it covers this many sessions.
    min_live_sessions: int = Field(20, ge=2)


# ------------------------------------------------------------------------------------ storage
class StorageLockParams(_Section):
    # A second run on the same storage root waits this long for the first, then stops.
    wait_seconds: float = Field(600.0, ge=0)
    # A lock whose holder stopped renewing it for this long is stale and may be taken over.
    lease_seconds: float = Field(120.0, ge=1)


class StorageParams(_Section):
    # An s3:// storage root whose bucket does not exist is an error unless this is true.
    create_bucket: bool = False
    lock: StorageLockParams = StorageLockParams()


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
    # Everything as known at the close of this NYSE session; null: the newest session in the data.
    run_date: dt.date | None = None
    storage: StorageParams = StorageParams()
    data_ingestion: DataIngestionParams = DataIngestionParams()
    feature_engineering: FeatureEngineeringParams = FeatureEngineeringParams()
    training: TrainingParams | None = None
    inference: InferenceParams = InferenceParams()
    trading: TradingParams = TradingParams()
    backtest: BacktestParams = BacktestParams()
    monitoring: MonitoringParams = MonitoringParams()
    competition: CompetitionParams = CompetitionParams()
    serving: ServingParams = ServingParams()

    @field_validator("run_date")
    @classmethod
    def _run_date_is_a_session(cls, run_date: dt.date | None) -> dt.date | None:
        if run_date is not None:
            # pandas and exchange_calendars on demand: the CLI's pre-flight imports this module
            import pandas as pd  # noqa: PLC0415

            from stock_mlops.core import calendar  # noqa: PLC0415

            calendar.check_session(pd.Timestamp(run_date))
        return run_date


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
