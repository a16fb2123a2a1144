"""The promotion gate and the retrain policy, on real prices with forecasts of known quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_mlops.core.model_handle import ModelHandle
from stock_mlops.core.params import TrainingParams
from stock_mlops.core.vocabulary import UNCHANGED
from stock_mlops.pipelines.training.nodes import (
    decide_promotion,
    record_training,
    request_alias_update,
    schedule_retraining,
    score_champion_on_gate,
)
from stock_mlops.pipelines.training.planning import HISTORY_COLUMNS, TrainingPlan, config_hash
from stock_mlops.pipelines.training.splits import fixed_fold, labelled_rows, split_rows

REGISTERED = {"name": "stock_mlops_test", "version": 2}
NAIVE_CHAMPION = {
    "version": "stock_mlops_test/1",
    "kind": "naive_last_close",
    "tags": {"kind": "naive_last_close"},
    "predictions": pd.DataFrame(columns=["symbol", "date", "prediction"]),
    "note": "",
}


@pytest.fixture
def plan(small_features, training_params) -> TrainingPlan:
    return TrainingPlan(
        due=True,
        reason="test",
        run_date=pd.Timestamp("2023-12-29"),
        fold=fixed_fold(training_params.split),
        ludwig_config_sha256="config",
        training_params_sha256="params",
    )


def gate_rows(features: pd.DataFrame, plan: TrainingPlan) -> pd.DataFrame:
    return split_rows(labelled_rows(features), plan.fold)["gate"]


def evaluation(gate: pd.DataFrame, predicted_return: np.ndarray) -> pd.DataFrame:
    """Evaluation rows of the gate slice: the naive forecast and a candidate's predictions."""
    base = pd.DataFrame(
        {
            "symbol": gate["symbol"].to_numpy(),
            "date": gate["target_date"].to_numpy(),
            "feature_date": gate["date"].to_numpy(),
            "split": "gate",
            "fold": "holdout",
            "last_close": gate["close"].to_numpy(),
            "actual": gate["target_close_1d"].to_numpy(),
            "predicted_direction": "flat",
        }
    )
    naive = base.assign(model="naive_last_close", prediction=base["last_close"])
    candidate = base.assign(
        model="ludwig", prediction=base["last_close"] * (1 + np.asarray(predicted_return))
    )
    return pd.concat([naive, candidate], ignore_index=True)


def test_a_model_that_halves_the_error_is_promoted(small_features, training_params, plan):
    gate = gate_rows(small_features, plan)
    better = 0.5 * gate["target_return_1d"].to_numpy()
    decision, metrics = decide_promotion(
        evaluation(gate, better), NAIVE_CHAMPION, REGISTERED, training_params, plan
    )
    assert decision["promote"] is True, decision["reason"]
    [test] = decision["comparisons"]
    assert test["against"] == "naive_last_close" and test["p_value"] < 1e-6
    assert test["dates"] == gate["target_date"].nunique() and test["rows"] == len(gate)
    assert (test["first_date"], test["last_date"]) == ("2022-07-01", "2022-12-30")
    assert metrics["gate.naive_last_close.p_value"]["value"] == test["p_value"]
    update = request_alias_update(decision, plan)
    assert (update.candidate_version, update.promote) == ("2", True)


def test_a_model_whose_only_advantage_is_noise_is_not_promoted(
    small_features, training_params, plan
):
    gate = gate_rows(small_features, plan)
    # Pure noise around the naive forecast, drawn until it happens to have a lower MAE.
    for seed in range(200):
        noise = np.random.default_rng(seed).normal(0.0, 0.002, len(gate))
        decision, _ = decide_promotion(
            evaluation(gate, noise), NAIVE_CHAMPION, REGISTERED, training_params, plan
        )
        if decision["comparisons"][0]["improvement"] > 0:
            break
    else:
        pytest.fail("no seed gave the noise a lower MAE than naive")
    assert decision["promote"] is False
    assert "not significantly" in decision["reason"]
    assert decision["comparisons"][0]["p_value"] > training_params.promotion.max_p_value


def test_a_worse_model_is_refused_and_says_why(small_features, training_params, plan):
    gate = gate_rows(small_features, plan)
    worse = -gate["target_return_1d"].to_numpy()
    decision, _ = decide_promotion(
        evaluation(gate, worse), NAIVE_CHAMPION, REGISTERED, training_params, plan
    )
    assert decision["promote"] is False
    assert "does not beat naive_last_close" in decision["reason"]
    assert request_alias_update(decision, plan).promote is False


def test_the_candidate_must_also_beat_a_learned_champion(small_features, training_params, plan):
    gate = gate_rows(small_features, plan)
    rows = evaluation(gate, 0.5 * gate["target_return_1d"].to_numpy())
    # The champion forecasts even better: the candidate beats naive but not the champion.
    champion_close = gate["close"].to_numpy() * (1 + 0.8 * gate["target_return_1d"].to_numpy())
    champion = {
        "version": "stock_mlops_test/1",
        "kind": "ludwig",
        "tags": {"kind": "ludwig", "validation_end": "2022-06-30"},
        "predictions": pd.DataFrame(
            {
                "symbol": gate["symbol"].to_numpy(),
                "date": gate["target_date"].to_numpy(),
                "prediction": champion_close,
            }
        ),
        "note": "",
    }
    decision, _ = decide_promotion(rows, champion, REGISTERED, training_params, plan)
    assert [t["against"] for t in decision["comparisons"]] == ["naive_last_close", "champion"]
    assert [t["passed"] for t in decision["comparisons"]] == [True, False]
    assert decision["promote"] is False and "does not beat champion" in decision["reason"]


def test_too_few_gate_dates_decide_nothing(small_features, training_params, plan):
    gate = gate_rows(small_features, plan)
    few = gate[gate["target_date"] <= gate["target_date"].sort_values().unique()[9]]
    decision, _ = decide_promotion(
        evaluation(few, 0.5 * few["target_return_1d"].to_numpy()),
        NAIVE_CHAMPION,
        REGISTERED,
        training_params,
        plan,
    )
    assert decision["promote"] is False
    assert "only 10 gate dates" in decision["reason"]


def test_a_champion_that_early_stopped_on_gate_rows_is_scored_after_them(
    small_features, tiny_forecaster, training_params, plan
):
    # The stored tiny model, posing as a champion whose validation ran to 2022-09-30.
    stored = tiny_forecaster["handle"]
    champion = ModelHandle(
        version="stock_mlops_test/1",
        source="registry",
        loader=stored.load,
        tags={"kind": "ludwig", "validation_end": "2022-09-30"},
    )
    scored = score_champion_on_gate(champion, small_features, plan, training_params)
    assert "early-stopped on rows up to 2022-09-30" in scored["note"]
    assert scored["predictions"]["date"].min() > pd.Timestamp("2022-09-30")
    assert scored["predictions"]["prediction"].notna().all()


def test_a_day_without_training_changes_nothing(small_features, training_params, plan):
    idle = TrainingPlan(
        due=False,
        reason="not due",
        run_date=plan.run_date,
        fold=plan.fold,
        ludwig_config_sha256="config",
        training_params_sha256="params",
    )
    assert decide_promotion(pd.DataFrame(), NAIVE_CHAMPION, {}, training_params, idle) == (
        UNCHANGED,
        {},
    )
    assert request_alias_update({}, idle) is UNCHANGED
    history, card = record_training(idle, {}, NAIVE_CHAMPION, {"run_id": "r", "started_at": "x"})
    assert history.empty and card is UNCHANGED


def test_the_card_names_the_model_in_service_and_its_window(plan):
    decision = {"promote": False, "candidate_version": 2, "model_name": "stock_mlops_test"}
    run_info = {"run_id": "r1", "started_at": "2023-12-29T22:00:00+00:00"}
    history, card = record_training(plan, decision, NAIVE_CHAMPION, run_info)
    assert card["version"] == "stock_mlops_test/1" and card["kind"] == "naive_last_close"
    assert card["train_end"] == "2021-06-30" and "last candidate" in card["reference_note"]
    assert list(history.columns) == HISTORY_COLUMNS
    assert history.iloc[0]["champion_version"] == "stock_mlops_test/1"
    promoted = {**decision, "promote": True}
    _, card = record_training(plan, promoted, NAIVE_CHAMPION, run_info)
    assert (card["version"], card["kind"]) == ("stock_mlops_test/2", "ludwig")


# ------------------------------------------------------------------------------ retrain policy
CONFIG = {"input_features": [{"name": "rsi_14", "type": "number"}]}


def history_row(run_date: str, params: TrainingParams) -> pd.DataFrame:
    from stock_mlops.pipelines.training.planning import params_hash

    row = dict.fromkeys(HISTORY_COLUMNS)
    row.update(
        run_date=pd.Timestamp(run_date),
        ludwig_config_sha256=config_hash(CONFIG),
        training_params_sha256=params_hash(params),
    )
    return pd.DataFrame([row], columns=HISTORY_COLUMNS)


def test_the_policy_trains_first_then_every_n_sessions(small_features, training_params):
    empty = pd.DataFrame(columns=HISTORY_COLUMNS)
    first = schedule_retraining(small_features, CONFIG, training_params, "2023-06-01", empty, None)
    assert first.due and "first training" in first.reason

    trained = history_row("2023-06-01", training_params)
    same_day = schedule_retraining(
        small_features, CONFIG, training_params, "2023-06-01", trained, None
    )
    assert not same_day.due  # the same date twice changes nothing
    # 2023-06-29 is the 19th session after 2023-06-01; 2023-06-30 the 20th (every_sessions=20).
    assert not schedule_retraining(
        small_features, CONFIG, training_params, "2023-06-29", trained, None
    ).due
    due = schedule_retraining(small_features, CONFIG, training_params, "2023-06-30", trained, None)
    assert due.due and due.reason.startswith("20 sessions since the last training")


def test_the_policy_retrains_after_an_alert_or_a_new_config(small_features, training_params):
    trained = history_row("2023-06-01", training_params)
    # 2023-06-15 is the 10th session after the training (alert_cooldown_sessions=10).
    alert = {"alert": True, "run_date": "2023-06-14"}
    after_alert = schedule_retraining(
        small_features, CONFIG, training_params, "2023-06-15", trained, alert
    )
    assert after_alert.due and "monitoring raised an alert on 2023-06-14" in after_alert.reason
    assert "has served 10 sessions" in after_alert.reason
    quiet = schedule_retraining(
        small_features, CONFIG, training_params, "2023-06-15", trained, {"alert": False}
    )
    assert not quiet.due
    # Three sessions after a training, an alert judges mostly the predecessor: no retrain yet.
    early = {"alert": True, "run_date": "2023-06-05"}
    assert not schedule_retraining(
        small_features, CONFIG, training_params, "2023-06-06", trained, early
    ).due
    no_cooldown = training_params.model_copy(
        update={
            "retrain": training_params.retrain.model_copy(update={"alert_cooldown_sessions": 0})
        }
    )
    assert schedule_retraining(
        small_features,
        CONFIG,
        no_cooldown,
        "2023-06-06",
        history_row("2023-06-01", no_cooldown),
        early,
    ).due
    changed = {"input_features": [{"name": "rsi_14", "type": "number"}, {"name": "obv"}]}
    assert (
        "config changed"
        in (
            schedule_retraining(
                small_features, changed, training_params, "2023-06-06", trained, None
            )
        ).reason
    )
