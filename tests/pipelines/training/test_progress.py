"""Training says how far it is: model k of N, the time so far and an estimate of what is left."""

from stock_mlops.pipelines.training.executors import training_progress


def test_progress_names_the_model_the_elapsed_time_and_an_estimate():
    assert training_progress(2, 7, 30.0) == "model 2 of 7, elapsed 0:30, about 1:15 left"
    assert training_progress(7, 7, 125.4) == "model 7 of 7, elapsed 2:05, about 0:00 left"
