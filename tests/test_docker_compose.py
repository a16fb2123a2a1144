"""docker-compose.yml could start: every file it references exists and it follows the Compose
Specification (the JSON schema vendored under tests/fixtures/compose, see SOURCES.csv).

No Docker engine runs where the tests run, so this is what can be checked without one. The checks
are generic: a service added later (say, Dagster's) is covered by the same rules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from helpers import FIXTURES, PROJECT
from jsonschema import Draft202012Validator

COMPOSE_FILE = PROJECT / "docker-compose.yml"
SCHEMA = FIXTURES / "compose" / "compose-spec.json"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ escapes a dollar.
_VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _local(path: str, base: Path = PROJECT) -> Path | None:
    """The file a reference names, or None for what is not a local path (a URL, a volume)."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", path) or path.startswith("git@"):
        return None
    return (base / Path(path).expanduser()).resolve()


def referenced_files(compose: dict) -> list[tuple[str, Path]]:
    """Every local file or folder the compose file needs, with where it is referenced."""
    found: list[tuple[str, Path]] = []
    named_volumes = set(compose.get("volumes") or {})
    for name, service in (compose.get("services") or {}).items():
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            context = _local(build.get("context", "."))
            if context is not None:
                found.append((f"{name}: build.context", context))
                if "dockerfile_inline" not in build:
                    dockerfile = _local(build.get("dockerfile", "Dockerfile"), context)
                    found.append((f"{name}: build.dockerfile", dockerfile))
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
            path, required = (
                (entry, True)
                if isinstance(entry, str)
                else (
                    entry["path"],
                    entry.get("required", True),
                )
            )
            if required:
                found.append((f"{name}: env_file", _local(path)))
        for volume in service.get("volumes") or []:
            if isinstance(volume, dict):
                source = volume.get("source") if volume.get("type") == "bind" else None
            else:
                source = str(volume).split(":")[0] if ":" in str(volume) else None
                if source in named_volumes or (source and not source.startswith((".", "/", "~"))):
                    source = None  # a named volume, not a file
            if source:
                found.append((f"{name}: volume {volume}", _local(source)))
        extends = service.get("extends")
        if isinstance(extends, dict) and "file" in extends:
            found.append((f"{name}: extends.file", _local(extends["file"])))
    for kind in ("configs", "secrets"):
        for name, entry in (compose.get(kind) or {}).items():
            if isinstance(entry, dict) and "file" in entry:
                found.append((f"{kind}.{name}: file", _local(entry["file"])))
    for entry in compose.get("include") or []:
        for path in [entry] if isinstance(entry, str) else list(entry.get("path") or []):
            found.append(("include", _local(path)))
    return found


def test_it_validates_against_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(compose), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_every_referenced_file_exists(compose):
    references = referenced_files(compose)
    assert any("build.dockerfile" in where for where, _ in references)  # the MLflow image
    missing = [f"{where} -> {path}" for where, path in references if not path.exists()]
    assert not missing, missing


def test_the_checks_catch_what_would_not_start(compose):
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["worker"] = {
        "build": {"context": "./docker/no-such-image"},
        "env_file": [".env.dagster", {"path": ".env.optional", "required": False}],
        "volumes": ["./no-such-folder:/data", "mlflow-data:/mlflow"],
    }
    missing = {where for where, path in referenced_files(broken) if not path.exists()}
    assert missing == {
        "worker: build.context",
        "worker: build.dockerfile",
        "worker: env_file",
        "worker: volume ./no-such-folder:/data",
    }
    schema = json.loads(SCHEMA.read_text())
    broken["services"]["mlflow"]["restart_policy"] = "always"
    messages = [e.message for e in Draft202012Validator(schema).iter_errors(broken)]
    assert any("restart_policy" in m for m in messages), messages


def test_every_variable_without_a_default_is_named_in_env_example():
    text = COMPOSE_FILE.read_text()
    example = (PROJECT / ".env.example").read_text()
    named = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, flags=re.M))
    needed = {m["name"] for m in _VARIABLE.finditer(text) if not m["rest"].startswith((":-", "-"))}
    assert needed and needed <= named, sorted(needed - named)


def test_the_mlflow_image_runs_the_project_s_mlflow_and_boto3():
    dockerfile = (PROJECT / "docker" / "mlflow" / "Dockerfile").read_text()
    pins = dict(
        re.findall(
            r"^([A-Za-z0-9_.-]+)==(\S+)", (PROJECT / "requirements.lock.txt").read_text(), re.M
        )
    )
    assert re.search(rf"^ARG MLFLOW_VERSION={re.escape(pins['mlflow'])}$", dockerfile, re.M)
    assert re.search(rf"^ARG BOTO3_VERSION={re.escape(pins['boto3'])}$", dockerfile, re.M)
    assert "FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}" in dockerfile
