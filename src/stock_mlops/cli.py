"""The project's command line: ``kedro <command>`` inside the project.

Kedro loads the ``cli`` group of this module and its commands take precedence over Kedro's and
the plugins' commands of the same name; ``python -m stock_mlops`` (and the ``stock-mlops``
script) runs this module's ``run``. To add a command, decorate a function with
``@cli.command()`` below (see :func:`run` for turning configuration mistakes into short errors).

``run`` is Kedro's own ``run`` command, built from Kedro's definition so that every option it
has (now and in later Kedro releases) is kept. Before the session starts it checks that the
environment folder exists, that the pipelines are registered, and that the Ludwig config can be
valid (:mod:`stock_mlops.preflight`, which imports no pipeline, so a bad config is refused in
seconds). It turns configuration mistakes (parameters, the Ludwig config, the environment, the
pipeline) into one short message with a "did you mean" where one fits and exit code 2, instead
of a traceback. Other errors keep their traceback: they are not the user's typo.
"""

from __future__ import annotations

import difflib
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import settings
from kedro.utils import find_kedro_project

from stock_mlops import preflight
from stock_mlops.core.params import ParameterError
from stock_mlops.pipelines.training.config_validation import LudwigConfigError

# Exit status of a configuration mistake (click uses 2 for usage errors as well).
CONFIGURATION_EXIT_CODE = 2
# Mistakes the user fixes in configuration or on the command line; anything else is a bug or an
# outage and keeps its traceback.
CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (ParameterError, LudwigConfigError)


class ConfigurationError(click.ClickException):
    """A configuration mistake: one short message on stderr, exit code 2, no traceback."""

    exit_code = CONFIGURATION_EXIT_CODE


def _interpreter_on_path() -> None:
    """Puts this interpreter's ``bin`` first on PATH when it is not there.

    Plugins start console scripts by name (``kedro mlflow ui`` runs ``mlflow ui``; ``mlflow
    models serve`` runs ``uvicorn``); without an activated virtualenv, ``.venv/bin/kedro`` would
    not find them, or would find another installation's.
    """
    bin_dir = str(Path(sys.executable).parent)
    entries = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in entries:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *[e for e in entries if e]])


_interpreter_on_path()


@click.group(name="stock_mlops")
def cli() -> None:
    """Commands of the stock-mlops project."""


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_environment(env: str | None, conf_source: str | None) -> None:
    """Refuses an environment that has no configuration folder.

    Args:
        env: ``--env`` (else ``KEDRO_ENV``); None or empty means the default.
        conf_source: ``--conf-source``, else the project's ``conf/``.

    Raises:
        ConfigurationError: Naming the environment and the environments that exist.
    """
    if not env:
        return
    conf = _conf_folder(conf_source)
    if conf is None or (conf / env).is_dir():
        return  # a packaged configuration (archive) is left to Kedro
    known = sorted(p.name for p in conf.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise ConfigurationError(
        f"unknown environment '{env}': there is no folder {_shown(conf)}/{env}"
        f"{_did_you_mean(env, known)} (environments: {', '.join(known)}). A new team is a "
        f"folder {_shown(conf)}/<team>/ whose globals.yml names the team (README, Teams)."
    )


def _project_path() -> Path:
    return find_kedro_project(Path.cwd()) or Path.cwd()


def _conf_folder(conf_source: str | None) -> Path | None:
    conf = Path(conf_source) if conf_source else _project_path() / settings.CONF_SOURCE
    return conf if conf.is_dir() else None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def registered_pipelines() -> list[str]:
    """The names ``--pipelines`` accepts: every pipeline package plus ``__default__``, without
    importing them (the registry finds one pipeline per package of ``stock_mlops.pipelines``)."""
    from stock_mlops import pipelines  # noqa: PLC0415 - the package only, not its pipelines

    found = [m.name for m in pkgutil.iter_modules(pipelines.__path__) if m.ispkg]
    return sorted({*found, "__default__"})


def check_pipelines(names: list[str]) -> None:
    """Refuses pipeline names the registry does not have.

    Args:
        names: The requested pipeline names.

    Raises:
        ConfigurationError: Naming the unknown pipeline, the closest name and every name.
    """
    known = registered_pipelines()
    unknown = [name for name in names if name not in known]
    if unknown:
        # A name registered by other means (pipeline_registry.py): ask the real registry.
        from kedro.framework.project import pipelines  # noqa: PLC0415

        known = sorted({*known, *pipelines.keys()})
        unknown = [name for name in unknown if name not in known]
    if unknown:
        name = unknown[0]
        raise ConfigurationError(
            f"unknown pipeline '{name}'{_did_you_mean(name, known)} (pipelines: {', '.join(known)})"
        )


def _run(**options: Any) -> Any:
    check_environment(options.get("env") or os.environ.get("KEDRO_ENV"), options["conf_source"])
    requested = list(options.get("pipelines") or [])
    if options.get("pipeline"):
        requested.append(options["pipeline"])
    check_pipelines(requested)
    try:
        # The Ludwig pre-flight's fast path: before the session imports pipelines and plugins.
        preflight.check_before_run(_project_path(), options, settings, requested)
        return kedro_run.callback(**options)
    except CONFIGURATION_ERRORS as exc:
        raise ConfigurationError(str(exc)) from None


run = click.Command(
    name="run",
    callback=_run,
    params=list(kedro_run.params),
    help=kedro_run.help,
    short_help=kedro_run.short_help,
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)
