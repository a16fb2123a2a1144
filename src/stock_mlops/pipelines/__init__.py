"""One folder per pipeline; each exposes ``create_pipeline()``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_create_pipeline(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package`` that imports its ``pipeline`` module
    only when ``create_pipeline`` is asked for.

    Kedro's ``find_pipelines`` still finds ``create_pipeline``; the CLI's pre-flight can import
    the package's pure modules (config rules, the feature registry) without the nodes' pandas,
    scipy and Ludwig helpers, and refuse a bad config in a few seconds.
    """

    def __getattr__(name: str) -> Any:
        if name == "create_pipeline":
            return importlib.import_module(f"{package}.pipeline").create_pipeline
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
