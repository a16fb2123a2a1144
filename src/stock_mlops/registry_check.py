"""``python -m stock_mlops.registry_check MODEL_URI``: says plainly whether a model can be served.

``make serve`` runs this before ``mlflow models serve``, whose own answer to a missing alias is a
traceback (``Registered model alias champion not found``). Exit status 0 when the model exists,
1 with one message naming the model, what the registry holds and what to run otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# models:/<name>@<alias>, models:/<name>/<version or stage>
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))$")


class ModelNotServable(LookupError):
    """The URI names nothing that can be served; the message says what to do."""


def check_model_uri(uri: str) -> str:
    """Checks that ``uri`` names a model MLflow can serve.

    Args:
        uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, a local model folder, or
            any other MLflow model URI (those are left to MLflow).

    Returns:
        A one-line description of what will be served.

    Raises:
        ModelNotServable: With the reason and the command that fixes it.
    """
    match = _MODELS_URI.match(uri)
    if match is None:
        if "://" in uri or uri.startswith(("runs:/", "models:/")):
            return f"serving {uri}"
        if not (Path(uri) / "MLmodel").is_file():
            raise ModelNotServable(f"{uri} is not an MLflow model folder (it has no MLmodel file)")
        return f"serving the model folder {uri}"
    from mlflow import MlflowClient  # noqa: PLC0415 - only when a registry model is named
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    client = MlflowClient()
    name, alias, version = match["name"], match["alias"], match["version"]
    store = os.environ.get("MLFLOW_TRACKING_URI") or "the default tracking store"
    try:
        client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise ModelNotServable(
            f"no registered model '{name}' in {store} (registered: {', '.join(known) or 'none'})."
            f" {_how_to_register(name)}"
        ) from None
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    if alias is not None:
        try:
            found = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            raise ModelNotServable(
                f"no version of '{name}' holds the alias '{alias}' (versions: "
                f"{', '.join(map(str, versions)) or 'none'}). The training pipeline's promotion "
                f"gate moves '{alias}' to a version that beats the naive baseline and the current "
                "champion (its reason is in 08_reporting/promotion_decision.json); to serve a "
                f"version anyway: MODEL_URI=models:/{name}/{versions[-1] if versions else 1}"
            ) from None
        return f"serving {uri}: version {found.version} of {name}"
    if version.isdigit() and int(version) not in versions:
        raise ModelNotServable(
            f"'{name}' has no version {version} (versions: {', '.join(map(str, versions))})"
        )
    return f"serving {uri}"


def _how_to_register(name: str) -> str:
    if name.endswith("_prices"):
        return "Build it from the team's champion with `make price-model` (ENV=<team>)."
    return "`make run` (ENV=<team>) trains and registers the team's model."


def main(argv: list[str] | None = None) -> int:
    """Command line entry: one model URI; prints what will be served or why it cannot be."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m stock_mlops.registry_check MODEL_URI", file=sys.stderr)  # noqa: T201
        return 2
    try:
        print(check_model_uri(args[0]))  # noqa: T201
    except ModelNotServable as exc:
        print(f"cannot serve {args[0]}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
