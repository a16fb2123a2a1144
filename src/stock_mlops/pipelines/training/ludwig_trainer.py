"""Training one Ludwig model. The only code that touches Ludwig's training API.

Ludwig needs a working directory (it checkpoints the best validation epoch there and restores it
when training ends); it is a temporary folder removed before returning, and the trained model
leaves as zipped bytes.

Normalisation statistics come from the training rows only. Ludwig 0.17 concatenates the training
and validation sets before computing them (``_preprocess_df_for_training``), so a z-score or
min-max scaler would carry the validation period into the model. Ludwig skips fitting any feature
already present in the ``training_set_metadata`` it is given, so the metadata is first built
from the training rows alone (a throw-away model's ``preprocess``) and handed to the model that
trains; validation rows are then transformed with the training statistics and still choose the
early-stopping epoch. The statistics travel inside the saved model, so serving needs nothing more.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stock_mlops.models.forecaster import zip_folder
from stock_mlops.models.ludwig_runtime import ludwig_model_class

logger = logging.getLogger(__name__)

MIN_TRAINING_ROWS = 30


@dataclass
class TrainedModel:
    """A trained Ludwig model as a zip archive, with its per-epoch curves."""

    archive: bytes
    curves: dict[str, list[float]] = field(default_factory=dict)
    # The restored model's metric on the validation rows, when asked for (a hyperopt trial).
    validation_score: float | None = None


def train_ludwig(
    config: dict[str, Any],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    seed: int,
    score: tuple[str, str] | None = None,
) -> TrainedModel:
    """Trains exactly what ``config`` says on ``train``, early-stopping on ``validation``.

    Args:
        config: A validated Ludwig config (without a ``hyperopt`` section).
        train: Training rows (inputs and the output column).
        validation: Validation rows, strictly later than the training rows.
        seed: Random seed for weights and shuffling.
        score: ``(output feature or "combined", metric)``: also evaluate the trained model on
            the validation rows with Ludwig's metric of that name.

    Returns:
        The saved model as zip bytes, its training/validation curves and, if asked, its score.
    """
    LudwigModel = ludwig_model_class()  # noqa: N806 - ~10 s import, only when training

    if len(train) < MIN_TRAINING_ROWS:
        raise ValueError(f"only {len(train)} training rows; at least {MIN_TRAINING_ROWS} needed")
    columns = [f["name"] for f in config["input_features"]] + [
        f["name"] for f in config["output_features"]
    ]
    rows = train[columns].reset_index(drop=True)
    metadata = training_rows_metadata(config, rows)
    model = LudwigModel(copy.deepcopy(config), logging_level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="ludwig_train_") as workdir:
        results = model.train(
            training_set=rows,
            validation_set=validation[columns].reset_index(drop=True) if len(validation) else None,
            # Ludwig mutates the metadata it is given (its checksum): hand it a copy.
            training_set_metadata=copy.deepcopy(metadata),
            output_directory=str(Path(workdir) / "results"),
            skip_save_training_description=True,
            skip_save_training_statistics=True,
            # Saving checkpoints is what lets Ludwig restore the best validation epoch at the end.
            skip_save_model=False,
            skip_save_progress=True,
            skip_save_log=True,
            skip_save_processed_input=True,
            random_seed=seed,
        )
        model.save(str(Path(workdir) / "model"))
        archive = zip_folder(Path(workdir) / "model")
        value = None
        if score is not None:
            value = _validation_score(model, validation[columns], score, Path(workdir) / "eval")
    return TrainedModel(
        archive=archive, curves=_curves(results.train_stats, config), validation_score=value
    )


def _validation_score(
    model: Any, validation: pd.DataFrame, score: tuple[str, str], workdir: Path
) -> float:
    """Ludwig's evaluation of the (restored best-epoch) model on the validation rows."""
    output, metric = score
    stats, _, _ = model.evaluate(
        dataset=validation.reset_index(drop=True),
        collect_predictions=False,
        output_directory=str(workdir),
        skip_save_unprocessed_output=True,
        skip_save_predictions=True,
        skip_save_eval_stats=True,
    )
    values = stats.get(output, {})
    if metric not in values:
        raise ValueError(
            f"hyperopt.metric: Ludwig reports no '{metric}' for '{output}' "
            f"(it reports {sorted(values)})"
        )
    return float(values[metric])


def training_rows_metadata(config: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """Ludwig's preprocessing metadata (normalisation statistics, vocabularies, fill values)
    computed from ``rows`` alone.

    A throw-away model is used: a model that has preprocessed once reuses its metadata silently.
    """
    probe = ludwig_model_class()(copy.deepcopy(config), logging_level=logging.WARNING)
    return probe.preprocess(training_set=rows, skip_save_processed_input=True).training_set_metadata


def _curves(stats: Any, config: dict[str, Any]) -> dict[str, list[float]]:
    output = config["output_features"][0]["name"]
    curves = {"train_loss": list(stats.training["combined"]["loss"])}
    validation = getattr(stats, "validation", None) or {}
    if "combined" in validation:
        curves["validation_loss"] = list(validation["combined"]["loss"])
    for metric in ("mean_absolute_error", "accuracy"):
        if metric in validation.get(output, {}):
            curves[f"validation_{metric}"] = list(validation[output][metric])
    return curves
