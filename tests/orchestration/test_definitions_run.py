"""The real code locations: they load, their schedules follow the NYSE calendar, and team red's
daily job runs in-process for one session and for a three-session backfill.

Slow: each location builds its Kedro project (about a minute here) and the red runs train a
one-epoch Ludwig model on two symbols, into a temporary storage root and MLflow store.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest
import yaml

from stock_mlops.orchestration import locations
from stock_mlops.orchestration.code_location import build_definitions, job_name

pytestmark = pytest.mark.slow

NEW_YORK = ZoneInfo("America/New_York")
TINY_LUDWIG = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}
SESSION = "2023-07-03"
FIRST_DAY = "2023-06-30"
BACKFILL = dg.PartitionKeyRange(FIRST_DAY, "2023-07-05")


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """A storage root per location and an MLflow store, all temporary."""
    root = tmp_path_factory.mktemp("dagster_runs")
    ludwig = root / "tiny.yaml"
    ludwig.write_text(yaml.safe_dump(TINY_LUDWIG), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        yield root, ludwig


@pytest.fixture(scope="module")
def all_definitions(storage) -> dict[str, dg.Definitions]:
    root, ludwig = storage
    built = {}
    for location in locations.locations():
        params = {
            "storage_root": str(root / location),
            "data_ingestion": {"symbols": "AAPL MSFT"},
            # Red's per-symbol models train on a two-worker Dask LocalCluster inside the
            # Dagster run (the executor a team uses when its daily job runs on a cluster).
            "training": {"ludwig_config": str(ludwig)}
            | ({"executor": "dask", "dask": {"n_workers": 2}} if location == "red" else {}),
            # The newest model, which moves, rather than the naive champion, which never trades.
            "inference": {"model_source": "latest"},
            "trading": {"threshold": 0.0},
        }
        if location == locations.COMPETITION_LOCATION:
            params = {"storage_root": str(root / location)}
        built[location] = build_definitions(location, runtime_params=params)
    return built


def test_every_location_loads_with_its_job_schedule_and_alert(all_definitions):
    assert list(all_definitions) == [*locations.team_locations(), "competition"]
    for location, definitions in all_definitions.items():
        dg.Definitions.validate_loadable(definitions)
        repository = definitions.get_repository_def()
        name = job_name(location)
        jobs = [job.name for job in repository.get_all_jobs() if not job.name.startswith("__")]
        assert jobs == [name]  # besides Dagster's implicit asset job
        assert [s.name for s in repository.schedule_defs] == [f"{name}_schedule"]
        assert [s.name for s in repository.sensor_defs] == [f"{location}_run_failure_alert"]


def _tick(definitions: dg.Definitions, day: str, time: dt.time):
    repository = definitions.get_repository_def()
    (schedule,) = repository.schedule_defs
    at = dt.datetime.combine(dt.date.fromisoformat(day), time, tzinfo=NEW_YORK)
    context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=repository)
    return schedule.evaluate_tick(context)


def test_each_schedule_runs_a_session_and_skips_a_holiday_and_a_weekend(all_definitions):
    for location, definitions in all_definitions.items():
        (schedule,) = definitions.get_repository_def().schedule_defs
        assert schedule.execution_timezone == "America/New_York"
        hour, minute = (int(part) for part in reversed(schedule.cron_schedule.split()[:2]))
        when = dt.time(hour, minute)
        # After the 16:00 close; the competition after every team.
        assert when > dt.time(16, 0)
        if location == locations.COMPETITION_LOCATION:
            assert when > dt.time(17, 30)
        (request,) = _tick(definitions, SESSION, when).run_requests
        assert request.partition_key == SESSION
        for day in ("2023-07-04", "2023-07-08"):  # Independence Day, a Saturday
            tick = _tick(definitions, day, when)
            assert tick.run_requests == []
            assert "not an NYSE session" in tick.skip_message


def test_the_partition_key_is_the_run_date_of_every_node_reading_it(all_definitions):
    job = all_definitions["red"].resolve_job_def("red_daily")
    config = job.partitioned_config.get_run_config_for_partition_key(SESSION)
    assert "inference__predict_next_day_node" in config["ops"]
    assert "trading__decide_trades_node" in config["ops"]
    assert {op["config"]["params:run_date"] for op in config["ops"].values()} == {SESSION}


def _output(storage, name: str) -> pd.DataFrame:
    root, _ = storage
    return pd.read_parquet(root / "red" / "07_model_output" / f"{name}.parquet")


def _days(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column).dt.strftime("%Y-%m-%d")


def test_red_daily_runs_one_session_in_process(all_definitions, storage):
    job = all_definitions["red"].resolve_job_def("red_daily")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key=FIRST_DAY, instance=instance)
    assert result.success
    assert result.dagster_run.tags["dagster/partition"] == FIRST_DAY
    predictions = _output(storage, "predictions")
    assert set(predictions["symbol"]) == {"AAPL", "MSFT"}
    # The prediction for the session after run_date (over the 4 July weekend), from its features.
    assert set(_days(predictions["feature_date"])) == {FIRST_DAY}
    assert set(_days(predictions["target_date"])) == {"2023-07-03"}
    # Its models were trained as tasks on the Dask cluster.
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.team = 'red'")
    assert "dask" in set(runs.get("tags.executor", pd.Series(dtype=str)).dropna())


def test_a_three_session_backfill_writes_three_sessions_of_predictions_and_orders(
    all_definitions, storage
):
    root, _ = storage
    job = all_definitions["red"].resolve_job_def("red_daily")
    season = job.partitions_def.get_partition_keys_in_range(BACKFILL)
    assert season == [FIRST_DAY, "2023-07-03", "2023-07-05"]
    with dg.instance_for_test() as instance:
        # What the backfill daemon launches: one run per session, in date order (dagster.yaml
        # allows one run per location at a time). The first day is done already: a no-op.
        for key in season:
            assert job.execute_in_process(partition_key=key, instance=instance).success
        runs = instance.get_runs(dg.RunsFilter(job_name="red_daily"))
    assert sorted(run.tags["dagster/partition"] for run in runs) == season

    predictions = _output(storage, "predictions")
    per_day = predictions.groupby(_days(predictions["feature_date"]))["symbol"].apply(sorted)
    assert per_day.to_dict() == {day: ["AAPL", "MSFT"] for day in season}  # no duplicate

    broker = root / "red" / "03_primary" / "broker"
    submitted = [
        json.loads(path.read_text(encoding="utf-8"))["request"]["as_of"]
        for path in (broker / "submissions").glob("*.json")
    ]
    assert sorted(set(submitted)) == season  # every session sent its orders to the broker
    account = json.loads((broker / "local_account.json").read_text(encoding="utf-8"))
    assert account["as_of"] == season[-1]

    # threshold 0, all-in on the best symbol: the first session with a positive prediction buys.
    orders = _output(storage, "orders")
    assert set(_days(orders["decision_date"])) <= set(season)
    positive = predictions[predictions["predicted_return"] > 0]
    if positive.empty:
        assert orders.empty  # nothing held, nothing to buy: no order at all
    else:
        first = _days(positive["feature_date"]).min()
        decisions = orders[orders["event"] == "decided"]  # the log also holds status events
        bought = decisions[
            (_days(decisions["decision_date"]) == first) & (decisions["side"] == "buy")
        ]
        assert bought["client_order_id"].nunique() == 1
        # Each run logs its decisions; a session run again finds its order already at the broker.
        statuses = bought.sort_values("decided_at")["status"].tolist()
        assert statuses[0] in {"approved", "refused"}
        if statuses[0] == "approved":
            assert set(statuses[1:]) <= {"already_submitted"}
            assert bought["client_order_id"].iloc[0] in account["orders"]


def test_a_failed_run_reaches_kedro_and_ends_its_mlflow_run_as_failed(all_definitions, storage):
    root, _ = storage
    job = all_definitions["red"].resolve_job_def("red_daily")
    config = job.partitioned_config.get_run_config_for_partition_key(SESSION)
    # A launchpad override the project refuses: the first node fails on its parameters.
    config["ops"]["data_ingestion__build_price_request_node"] = {
        "config": {"params:data_ingestion": {"source": "no-such-source"}}
    }
    with dg.instance_for_test() as instance:
        # raise_on_error=False, as a run worker runs the job (hooks run before the run ends).
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    assert not result.success
    failure, *refused_later = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "data_ingestion__build_price_request_node"
    # Steps independent of the failed one are refused, not run (they would reopen the MLflow run).
    for later in refused_later:
        assert "the pipeline already failed" in later.event_specific_data.error.cause.message
    refused = failure.event_specific_data.error.cause  # Dagster wraps the node's error
    assert refused.cls_name == "ParameterError"
    assert "data_ingestion.source" in refused.message
    hooks = [
        e.event_type_value for e in result.all_events if e.event_type_value == "HOOK_COMPLETED"
    ]
    assert hooks  # the Kedro failure hook ran
    with sqlite3.connect(root / "mlflow.db") as db:
        rows = db.execute(
            "select name, status, start_time from runs order by start_time desc"
        ).fetchall()
    (status,) = [row[1] for row in rows[:1]]
    assert status == "FAILED", rows  # kedro-mlflow's on_pipeline_error closed the run
