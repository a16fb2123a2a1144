"""A team's hyperparameter search: the Ludwig config's ``hyperopt:`` section, run with Optuna.

The section is written as for Ludwig's native Optuna executor (``executor: {type: optuna,
num_samples, sampler}``, ``parameters`` with Ludwig's search spaces, ``goal``, ``metric``,
``output_feature``, ``split``). It runs here rather than through ``ludwig.hyperopt.run``, for two
reasons the search must meet in this project:

- Ludwig's executor builds its sampler without a seed, so two runs of the same config try
  different trials; here the sampler is seeded with ``training.random_seed`` and every trial
  trains with that seed, so a search gives the same trials, the same winner and the same model
  wherever it runs (serially or on a Dask worker).
- Ludwig's executor trains on the rows it is handed with its own preprocessing; here each trial
  trains exactly as the final model does (:func:`~.ludwig_trainer.train_ludwig`: normalisation
  from the training rows only, validation rows for early stopping) and is scored on the
  validation rows only, never on the gate or test rows.

The search runs inside the task of the model it tunes (one symbol, or the pooled model), so with
``training.executor: dask`` the trials run on the Dask workers. The best trial's model is the
model: it trains with the same config and seed a retraining would use, so it is not trained twice.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from stock_mlops.pipelines.training.config_validation import LudwigConfigError

SECTION = "hyperopt"
SAMPLERS = ("tpe", "random", "gp", "cmaes")
# Ludwig's search-space names (``space:``) with the Optuna suggestion each maps to.
SPACES = {
    "uniform": ("lower", "upper"),
    "loguniform": ("lower", "upper"),
    "int": ("lower", "upper"),
    "randint": ("lower", "upper"),
    "qrandint": ("lower", "upper"),
    "choice": ("categories",),
    "categorical": ("categories",),
    "grid_search": ("values",),
}
# Top-level sections a parameter may tune besides a feature by name (``rsi_14.preprocessing...``).
TUNABLE_SECTIONS = ("trainer", "combiner", "preprocessing", "defaults")
GOALS = ("minimize", "maximize")


@dataclass(frozen=True)
class SearchSpec:
    """A validated ``hyperopt:`` section."""

    parameters: dict[str, dict[str, Any]]
    output_feature: str
    metric: str
    goal: str
    num_samples: int
    sampler: str


@dataclass(frozen=True)
class Trial:
    """One trial: what it tried and its validation score."""

    number: int
    parameters: dict[str, Any]
    score: float
    epochs: int


@dataclass
class FittedModel:
    """The model to keep (the best trial's when there was a search) and the trials."""

    archive: bytes
    curves: dict[str, list[float]]
    trials: list[Trial] = field(default_factory=list)
    best_trial: int | None = None


def search_spec(config: dict[str, Any]) -> SearchSpec | None:
    """The config's search, validated (None without a ``hyperopt`` section).

    Raises:
        LudwigConfigError: Naming the key of the section that cannot run and why.
    """
    section = config.get(SECTION)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise LudwigConfigError("hyperopt: must be a mapping (Ludwig's hyperopt section)")
    executor = section.get("executor") or {}
    kind = executor.get("type")
    if kind != "optuna":
        raise LudwigConfigError(
            f"hyperopt.executor.type: '{kind}' cannot run here; use 'optuna' (Ludwig's native "
            "Optuna executor format; trials run without Ray, on the Dask workers with "
            "training.executor: dask)"
        )
    samples = executor.get("num_samples", 10)
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise LudwigConfigError(
            f"hyperopt.executor.num_samples: {samples!r} must be a whole number >= 1"
        )
    sampler = executor.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise LudwigConfigError(
            f"hyperopt.executor.sampler: '{sampler}' is not one of {list(SAMPLERS)} (each is "
            "seeded with training.random_seed; 'auto' picks its algorithm as it goes and is not)"
        )
    split = section.get("split", "validation")
    if split != "validation":
        raise LudwigConfigError(
            f"hyperopt.split: '{split}': trials are scored on the validation rows only (the gate "
            "and test rows judge the winner and must not choose it); use 'validation'"
        )
    goal = section.get("goal", "minimize")
    if goal not in GOALS:
        raise LudwigConfigError(f"hyperopt.goal: '{goal}' is not one of {list(GOALS)}")
    target = config["output_features"][0]["name"]
    output = section.get("output_feature", "combined")
    if output not in (target, "combined"):
        raise LudwigConfigError(
            f"hyperopt.output_feature: '{output}' is not the output feature ('{target}') or "
            "'combined'"
        )
    metric = section.get("metric", "loss")
    if output == "combined" and metric != "loss":
        raise LudwigConfigError("hyperopt.metric: the 'combined' output feature has only 'loss'")
    parameters = section.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise LudwigConfigError("hyperopt.parameters: must name at least one parameter to search")
    features = {f["name"] for f in config["input_features"]} | {target}
    for name, space in parameters.items():
        _check_parameter(str(name), space, features)
    return SearchSpec(
        parameters=copy.deepcopy(parameters),
        output_feature=output,
        metric=metric,
        goal=goal,
        num_samples=samples,
        sampler=sampler,
    )


def _check_parameter(name: str, space: Any, features: set[str]) -> None:
    where = f"hyperopt.parameters.{name}"
    head = name.split(".", maxsplit=1)[0]
    if head not in TUNABLE_SECTIONS and head not in features:
        raise LudwigConfigError(
            f"{where}: tunes neither a section ({', '.join(TUNABLE_SECTIONS)}) nor a feature "
            f"of the config ({sorted(features)})"
        )
    if name.startswith("preprocessing.split"):
        raise LudwigConfigError(f"{where}: the split is the project's (by date), not searched")
    if not isinstance(space, dict) or space.get("space") not in SPACES:
        raise LudwigConfigError(f"{where}.space: must be one of {sorted(SPACES)}")
    missing = [key for key in SPACES[space["space"]] if key not in space]
    if missing:
        raise LudwigConfigError(f"{where}: space '{space['space']}' needs {missing}")
    if "lower" in space and not space["lower"] < space["upper"]:
        raise LudwigConfigError(f"{where}: lower must be below upper")
    if space["space"] == "loguniform" and space["lower"] <= 0:
        raise LudwigConfigError(f"{where}: a loguniform space needs lower > 0")


def without_search(config: dict[str, Any]) -> dict[str, Any]:
    """The config Ludwig trains (the ``hyperopt`` section is the search's, not the model's)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if k != SECTION}


def fit_model(
    config: dict[str, Any], train: pd.DataFrame, validation: pd.DataFrame, seed: int
) -> FittedModel:
    """Trains one model (one symbol's, or the pooled one), after its search when it has one.

    Args:
        config: The validated Ludwig config (with or without a ``hyperopt`` section).
        train: Training rows.
        validation: Validation rows (early stopping, and the trials' scores).
        seed: ``training.random_seed``: the sampler's and every trial's seed.

    Returns:
        The model to keep and, after a search, every trial.
    """
    from stock_mlops.pipelines.training.ludwig_trainer import train_ludwig  # noqa: PLC0415

    spec = search_spec(config)
    base = without_search(config)
    if spec is None:
        trained = train_ludwig(base, train, validation, seed)
        return FittedModel(archive=trained.archive, curves=trained.curves)
    if validation.empty:
        raise ValueError("a hyperopt search needs validation rows to score its trials")
    import optuna  # noqa: PLC0415 - only for a search
    from ludwig.hyperopt.utils import substitute_parameters  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=spec.goal, sampler=_sampler(spec.sampler, seed))
    trials: list[Trial] = []
    best: tuple[float, int, Any] | None = None
    for number in range(spec.num_samples):
        trial = study.ask()
        values = _suggest(trial, spec.parameters)
        trial_config = substitute_parameters(copy.deepcopy(base), values)
        trained = train_ludwig(
            trial_config, train, validation, seed, score=(spec.output_feature, spec.metric)
        )
        score = float(trained.validation_score)
        if math.isfinite(score):
            study.tell(trial, score)
        else:  # a diverged trial: Optuna records it as failed, the search goes on
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        epochs = len(trained.curves.get("train_loss", []))
        trials.append(Trial(number=number, parameters=values, score=score, epochs=epochs))
        ranked = score if spec.goal == "minimize" else -score
        if math.isfinite(score) and (best is None or ranked < best[0]):
            best = (ranked, number, trained)
    if best is None:
        raise ValueError(f"every one of the {spec.num_samples} hyperopt trials scored NaN")
    _, number, trained = best
    return FittedModel(
        archive=trained.archive, curves=trained.curves, trials=trials, best_trial=number
    )


def _sampler(kind: str, seed: int) -> Any:
    import optuna  # noqa: PLC0415

    samplers = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "gp": optuna.samplers.GPSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
    }
    return samplers[kind](seed=seed)


def _suggest(trial: Any, parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, space in parameters.items():
        kind = space["space"]
        if kind in ("uniform", "loguniform"):
            values[name] = trial.suggest_float(
                name, space["lower"], space["upper"], log=kind == "loguniform"
            )
        elif kind in ("int", "randint", "qrandint"):
            values[name] = trial.suggest_int(name, int(space["lower"]), int(space["upper"]))
        else:
            choices = space.get("categories", space.get("values"))
            values[name] = trial.suggest_categorical(name, choices)
    return values
