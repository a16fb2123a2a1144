"""The daily loop day by day: point in time, idempotent, advancing the broker; and the season.

One short season (three NYSE sessions, teams red and blue, two symbols, a one-epoch model that
trades: `inference.model_source=latest`, so its predictions depend on the features) is replayed
once for the module; the tests read what it left.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from helpers import run_kedro

from stock_mlops.core.params import DataIngestionParams, FeatureEngineeringParams
from stock_mlops.pipelines.data_ingestion.nodes import clean_prices
from stock_mlops.pipelines.feature_engineering.nodes import build_features
from stock_mlops.season import SeasonError, replay_season, season_sessions
from stock_mlops.sources.base import ArchivedPrices, PriceRequest
from stock_mlops.sources.files import BundledSource

pytestmark = pytest.mark.slow

DAYS = ("2023-07-03", "2023-07-05", "2023-07-06")  # 2023-07-04 is a holiday
SYMBOLS = ("AAPL", "MSFT")
TINY = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}


class Season:
    def __init__(self, base, tracking_uri: str) -> None:
        self.prefix = base / "season"
        self.tracking_uri = tracking_uri
        config = base / "tiny.yaml"
        config.write_text(yaml.safe_dump(TINY))
        self.params = {
            "data_ingestion": {"symbols": " ".join(SYMBOLS)},
            # The schedule alone decides here: a one-epoch model trips monitoring's alert (worse
            # than naive), which would retrain every day (tests/pipelines/training cover that).
            "training": {
                "ludwig_config": str(config),
                "retrain": {"on_monitoring_alert": False},
            },
            "inference": {"model_source": "latest"},
        }

    def root(self, team: str):
        return self.prefix / team

    def table(self, team: str, relative: str) -> pd.DataFrame:
        return pd.read_parquet(self.root(team) / relative)

    def replay(self, start: str = DAYS[0], end: str = DAYS[-1], **kwargs):
        return replay_season(
            start,
            end,
            ["red", "blue"],
            params=self.params,
            storage_prefix=str(self.prefix),
            progress=lambda line: None,
            **kwargs,
        )


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    base = tmp_path_factory.mktemp("season")
    tracking_uri = f"sqlite:///{base / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        replayed = Season(base, tracking_uri)
        replayed.report = replayed.replay()
        yield replayed


@pytest.fixture
def tracking(season, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", season.tracking_uri)


def test_every_session_ran_once_for_each_team(season):
    assert season.report.sessions == list(DAYS)
    for team in ("red", "blue"):
        assert season.report.days_run[team] == list(DAYS)
        history = season.table(team, "06_models/training_history.parquet")
        # Trained on the first day only: the next two reuse the model (every_sessions=20).
        assert history["run_date"].dt.strftime("%Y-%m-%d").tolist() == [DAYS[0]]
        log = season.table(team, "07_model_output/predictions.parquet")
        assert sorted(log["feature_date"].dt.strftime("%Y-%m-%d").unique()) == list(DAYS)
        assert (log["team"] == team).all()


def test_days_without_a_retrain_keep_the_backtest_and_record_no_training_input(season, tracking):
    """Between retrains the backtest's inputs are the same (its period ends before the new
    bar), so its stored results stand; and a run that did not train names no training input."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=season.tracking_uri)
    for team in ("red", "blue"):
        root = season.root(team)
        first_day_done = (root / "season" / f"{DAYS[0]}.json").stat().st_mtime_ns
        for name in ("backtest_trades.parquet", "backtest_equity.parquet"):
            assert (root / "07_model_output" / name).stat().st_mtime_ns < first_day_done
        permutation = root / "08_reporting/backtest_permutation.json"
        assert permutation.stat().st_mtime_ns < first_day_done
        assert len(json.loads(permutation.read_text())["inputs_fingerprint"]) == 64
        # ...while the summary is rebuilt and logged by every day's run.
        metrics = root / "08_reporting/backtest_metrics.json"
        assert metrics.stat().st_mtime_ns > first_day_done
        experiment = client.get_experiment_by_name(f"stock_mlops_{team}")
        for day in DAYS:
            [run] = client.search_runs(
                [experiment.experiment_id],
                f"attributes.run_name = '{team} · __default__ · {day}'",
            )
            inputs = [i.dataset.name for i in run.inputs.dataset_inputs]
            assert inputs == (["features"] if day == DAYS[0] else []), (day, inputs)
            assert "backtest.sharpe" in run.data.metrics
            # Each day's Kedro log is stored beside its marker, and says what the backtest did.
            log = (root / "season" / f"{day}.log").read_text()
            assert "Pipeline execution completed successfully" in log
            assert ("backtest: the stored results" in log) == (day != DAYS[0]), day


def _truncated_features(day: str) -> pd.DataFrame:
    """Features built by the project's own nodes from bundled prices cut at ``day``."""
    source = BundledSource()
    raw = ArchivedPrices(
        request=PriceRequest(source="bundled", symbols=SYMBOLS),
        fetched_at="",
        payloads={s: [source.fetch(s)] for s in SYMBOLS},
        failures=[],
    )
    prices, _ = clean_prices(raw, DataIngestionParams(), None)
    return build_features(prices[prices["date"] <= day], FeatureEngineeringParams())


def test_each_days_prediction_equals_one_made_from_prices_cut_at_that_day(season, tracking):
    import mlflow.pyfunc

    log = season.table("red", "07_model_output/predictions.parquet")
    [version] = log["model_version"].unique()
    folder = version.removeprefix("local:")
    model = mlflow.pyfunc.load_model(
        str(season.root("red") / "06_models/forecaster" / folder / "forecaster")
    )
    for day in DAYS:
        rows = _truncated_features(day)
        rows = rows[rows["date"] == day]
        expected = model.predict(rows[model.unwrap_python_model().columns])["prediction"]
        logged = log[log["feature_date"] == day].set_index("symbol").loc[rows["symbol"]]
        assert logged["predicted_return"].to_numpy() == pytest.approx(expected.to_numpy())
        assert (logged["target_date"] > pd.Timestamp(day)).all()


def test_yesterdays_orders_fill_at_todays_open(season):
    state = json.loads((season.root("red") / "03_primary/broker/local_account.json").read_text())
    fills = pd.DataFrame(state["fills"])
    assert not fills.empty, "the one-epoch model placed no order in three days"
    decided = {
        o["client_order_id"]: o["client_order_id"].split("-")[1] for o in fills.to_dict("records")
    }
    for fill in fills.to_dict("records"):
        decision_day = pd.Timestamp(decided[fill["client_order_id"]])
        # Decided at one session's close, filled at the next session's open.
        assert pd.Timestamp(fill["date"]) > decision_day
    prices = season.table("red", "03_primary/prices.parquet")
    opens = prices.set_index(["symbol", "date"])["open"]
    for fill in fills.to_dict("records"):
        market_open = opens[(fill["symbol"], pd.Timestamp(fill["date"]))]
        assert fill["price"] == pytest.approx(
            market_open * (1 + 5e-4 * (1 if fill["side"] == "buy" else -1))
        )


def test_the_same_day_twice_changes_nothing(season, tracking):
    root = season.root("red")
    logs = ["07_model_output/predictions.parquet", "07_model_output/orders.parquet"]
    before = {name: season.table("red", name) for name in logs}
    account = (root / "03_primary/broker/local_account.json").read_bytes()
    run_kedro(
        "__default__",
        env="red",
        params={**season.params, "storage_root": str(root), "run_date": DAYS[-1]},
    )
    for name in logs:
        pd.testing.assert_frame_equal(season.table("red", name), before[name])
    assert (root / "03_primary/broker/local_account.json").read_bytes() == account


def test_a_replay_resumes_and_a_failed_day_is_named(season, tracking):
    again = season.replay()
    assert again.days_run == {"red": [], "blue": []}
    assert again.days_skipped["red"] == list(DAYS)
    # The bundled data end on 2023-12-29: a season running past it stops at the first day after.
    with pytest.raises(
        SeasonError, match=r"team red, session 2024-01-02 \(day 2 of 2\) failed"
    ) as err:
        season.replay("2023-12-29", "2024-01-02", competition=False)
    assert (season.root("red") / "season/2023-12-29.json").exists()
    failed_log = season.root("red") / "season/2024-01-02.failed.log"
    assert f"that day's log: {failed_log})" in str(err.value)
    # ...with the error's traceback, which Kedro's own log lines do not carry.
    reason = str(err.value).split(" failed: ", 1)[1].split(". Days before it", 1)[0]
    logged = failed_log.read_text()
    assert "Traceback (most recent call last)" in logged
    assert reason in logged
    assert not (season.root("red") / "season/2024-01-02.json").exists()


def test_the_competition_ranks_the_teams_on_their_live_record(season):
    board = pd.read_csv(season.prefix / "competition/08_reporting/leaderboard.csv")
    assert sorted(board["team"]) == ["blue", "red"]
    # Predictions for 2023-07-05 and 2023-07-06 met realised closes.
    assert (board["live_n"] > 0).all()


def test_a_range_without_sessions_is_refused():
    with pytest.raises(SeasonError, match="no NYSE session between 2023-07-04 and 2023-07-04"):
        season_sessions("2023-07-04", "2023-07-04")
