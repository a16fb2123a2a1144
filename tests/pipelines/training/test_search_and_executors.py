"""The hyperopt section is checked before anything trains, and executors name the failing task."""

from __future__ import annotations

import copy

import pytest
from conftest import TINY_SEARCH

from stock_mlops.pipelines.training.config_validation import LudwigConfigError
from stock_mlops.pipelines.training.executors import SerialExecutor, Task, TaskFailed
from stock_mlops.pipelines.training.hyperopt import _sampler, _suggest, search_spec

SEARCH = {
    **TINY_SEARCH,
    "executor": {"type": "optuna", "num_samples": 3, "sampler": "tpe"},
    "parameters": {
        **TINY_SEARCH["parameters"],
        "combiner.output_size": {"space": "choice", "categories": [4, 8, 16]},
    },
}


def _with_search(config, **changes):
    config = copy.deepcopy(config)
    config["hyperopt"] = {**copy.deepcopy(SEARCH), **changes}
    return config


def test_a_search_in_ludwigs_optuna_format_is_read(tiny_ludwig_config):
    spec = search_spec(_with_search(tiny_ludwig_config))
    assert (spec.num_samples, spec.sampler, spec.goal) == (3, "tpe", "minimize")
    assert search_spec(tiny_ludwig_config) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"executor": {"type": "ray"}}, "hyperopt.executor.type: 'ray' cannot run here"),
        ({"split": "test"}, "trials are scored on the validation rows only"),
        ({"executor": {"type": "optuna", "sampler": "auto"}}, "sampler: 'auto' is not one of"),
        ({"executor": {"type": "optuna", "num_samples": 0}}, "num_samples: 0 must be"),
        ({"output_feature": "close"}, "is not the output feature"),
        ({"parameters": {}}, "must name at least one parameter"),
        (
            {"parameters": {"trainr.learning_rate": {"space": "uniform", "lower": 0, "upper": 1}}},
            "hyperopt.parameters.trainr.learning_rate: tunes neither a section",
        ),
        (
            {"parameters": {"trainer.learning_rate": {"space": "normal"}}},
            "hyperopt.parameters.trainer.learning_rate.space: must be one of",
        ),
        (
            {"parameters": {"trainer.epochs": {"space": "int", "lower": 5, "upper": 2}}},
            "lower must be below upper",
        ),
    ],
)
def test_a_search_that_cannot_run_is_refused_naming_the_key(tiny_ludwig_config, changes, message):
    with pytest.raises(LudwigConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        search_spec(_with_search(tiny_ludwig_config, **changes))


def test_the_seeded_sampler_proposes_the_same_trials_every_time():
    import optuna

    def proposals(seed):
        study = optuna.create_study(direction="minimize", sampler=_sampler("tpe", seed))
        values = []
        for score in (3.0, 1.0, 2.0, 0.5):
            trial = study.ask()
            values.append(_suggest(trial, SEARCH["parameters"]))
            study.tell(trial, score)
        return values

    assert proposals(7) == proposals(7)
    assert proposals(7) != proposals(8)


def _fails_for(symbol: str) -> str:
    if symbol == "MSFT":
        raise ValueError("only 3 training rows")
    return symbol.lower()


def test_the_serial_executor_names_the_task_that_failed():
    tasks = [Task(s, _fails_for, (s,)) for s in ("AAPL", "MSFT", "NVDA")]
    assert SerialExecutor().run(tasks[:1], "training") == {"AAPL": "aapl"}
    with pytest.raises(TaskFailed, match="training MSFT failed: only 3 training rows"):
        SerialExecutor().run(tasks, "training")
