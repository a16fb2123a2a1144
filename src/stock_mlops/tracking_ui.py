"""``python -m stock_mlops.tracking_ui EXPERIMENT BASE_URL``: the link ``make ui`` prints.

The MLflow 3 UI opens in its "GenAI" mode, where a bare experiment link shows an overview of
traces; ``runs?workflowType=machine_learning`` opens the runs table in "Model training" mode
directly, in any browser profile.
"""

from __future__ import annotations

import sys


def runs_link(base_url: str, experiment_id: str) -> str:
    """The runs table of one experiment in the UI's "Model training" mode."""
    base = base_url.rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def experiments_link(base_url: str) -> str:
    """The list of experiments in the UI's "Model training" mode."""
    return f"{base_url.rstrip('/')}/#/experiments?workflowType=machine_learning"


def main(argv: list[str] | None = None) -> int:
    """Prints where the team's runs will be once the UI is up."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m stock_mlops.tracking_ui EXPERIMENT BASE_URL", file=sys.stderr)  # noqa: T201
        return 2
    name, base_url = args
    from mlflow import MlflowClient  # noqa: PLC0415

    experiment = MlflowClient().get_experiment_by_name(name)
    if experiment is None:
        print(  # noqa: T201
            f"MLflow UI: {experiments_link(base_url)} (no experiment '{name}' yet: `make run` "
            "creates it)"
        )
    else:
        print(f"MLflow UI, {name} runs: {runs_link(base_url, experiment.experiment_id)}")  # noqa: T201
    print("(starting; the first page can take a minute on a small machine; Ctrl-C stops it)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
