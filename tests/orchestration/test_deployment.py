"""What can be checked of the deployment without a Docker engine: every file the image and the
Dagster services reference, both Dagster instance configurations loaded by Dagster itself, and the
`make orchestrate` command. The compose file against the Compose Specification's schema, for every
service, is tests/test_docker_compose.py."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess

import dagster as dg
import pytest
import yaml
from helpers import PROJECT

DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
WORKSPACE_IN_IMAGE = "/opt/dagster/workspace.yaml"
APP_IN_IMAGE = "/opt/dagster/app"
# The instance settings both configurations must share (storage differs on purpose).
SHARED_INSTANCE_KEYS = (
    "telemetry",
    "concurrency",
    "run_retries",
    "run_monitoring",
    "code_servers",
    "run_queue",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yml").read_text())


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    logical, pending = [], ""
    for line in dockerfile.splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, rest = pending.strip().partition(" ")
            logical.append((keyword.upper(), rest.strip()))
        pending = ""
    return logical


def _excluded(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` (or a folder above it) out of the build context.

    The patterns used here are plain names, folders (``data/``), ``**/`` prefixes and ``!``
    exceptions; later lines win, as in Docker.
    """
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        for candidate in candidates:
            tails = [candidate]
            if pattern.startswith("**/"):
                pattern_tail = pattern[3:]
                tails = [
                    "/".join(candidate.split("/")[i:]) for i in range(candidate.count("/") + 1)
                ]
                if any(fnmatch.fnmatchcase(t, pattern_tail) for t in tails):
                    excluded = not negate
            elif fnmatch.fnmatchcase(candidate, pattern):
                excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions((PROJECT / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def dockerignore() -> list[str]:
    lines = (PROJECT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_dagster_services_reference_what_exists(compose):
    services, volumes = compose["services"], set(compose["volumes"])
    for name in DAGSTER_SERVICES:
        service = services[name]
        context = PROJECT / service["build"]["context"]
        assert (context / service["build"]["dockerfile"]).is_file()
        assert service["image"] == services["dagster-webserver"]["image"]  # one image
        assert service["command"][-2:] == ["-w", WORKSPACE_IN_IMAGE]
        for volume in service["volumes"]:
            source, target, *_ = volume.split(":")
            if source.startswith("."):
                assert (PROJECT / source).is_dir(), volume
                assert target.startswith(APP_IN_IMAGE)
            else:
                assert source in volumes, volume
        # The URLs name the compose services that serve them.
        env = service["environment"]
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000" and "mlflow" in services
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000" and "minio" in services
        for dependency in service["depends_on"]:
            assert dependency in services
    assert services["dagster-webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["dagster-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    assert services["dagster-webserver"]["command"][0] == "dagster-webserver"


def test_the_image_is_built_from_the_pinned_set_on_python_3_12(dockerfile):
    assert ("FROM", "python:3.12-slim") in dockerfile
    runs = " ".join(args for keyword, args in dockerfile if keyword == "RUN")
    assert "-r requirements.in -c requirements.lock.txt" in runs
    makefile = (PROJECT / "Makefile").read_text()
    uv_version = next(line for line in makefile.splitlines() if line.startswith("UV_VERSION"))
    assert f'"uv=={uv_version.split(":=")[1].strip()}"' in runs  # the version make install uses
    assert "uv pip install --system --no-cache --no-deps -e ." in runs
    lock = (PROJECT / "requirements.lock.txt").read_text().splitlines()
    for package in ("kedro-dagster==", "dagster==", "dagster-webserver=="):
        assert any(line.startswith(package) for line in lock), package


def test_every_file_the_image_copies_is_in_the_build_context(dockerfile, dockerignore):
    copied = []
    for keyword, args in dockerfile:
        if keyword != "COPY":
            continue
        *sources, _destination = shlex.split(args)
        copied += [s for s in sources if not s.startswith("--")]
    assert "docker/dagster/dagster.yaml" in copied and "docker/dagster/entrypoint.sh" in copied
    for source in copied:
        assert (PROJECT / source).exists(), source
        assert not _excluded(source, dockerignore), f"{source} is excluded by .dockerignore"
    # What the code locations read at run time is inside the copied folders.
    for needed in ("src/stock_mlops/definitions.py", "conf/base/dagster.yml", "conf/red"):
        assert (PROJECT / needed).exists()
        assert not _excluded(needed, dockerignore)
    for private in ("conf/local/credentials.yml", ".env", "data/red/03_primary/prices.parquet"):
        assert _excluded(private, dockerignore), private


def test_the_entrypoint_writes_the_workspace_the_services_read(dockerfile):
    entrypoint = (PROJECT / "docker/dagster/entrypoint.sh").read_text()
    assert (
        f"python -m stock_mlops.orchestration workspace --output {WORKSPACE_IN_IMAGE}" in entrypoint
    )
    assert entrypoint.rstrip().endswith('exec "$@"')
    mode = subprocess.run(
        ["git", "ls-files", "--stage", "docker/dagster/entrypoint.sh"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert mode.startswith("100755"), "the entrypoint must be executable in the repository"
    [entry] = [args for keyword, args in dockerfile if keyword == "ENTRYPOINT"]
    assert json.loads(entry) == ["stock-mlops-dagster"]
    [cmd] = [args for keyword, args in dockerfile if keyword == "CMD"]
    assert json.loads(cmd)[-2:] == ["-w", WORKSPACE_IN_IMAGE]


def _instance(home, monkeypatch, source) -> dg.DagsterInstance:
    home.mkdir()
    shutil.copy(source, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_STORAGE_DIR", str(home / "storage"))
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_DIR", str(home / "compute_logs"))
    (home / "storage").mkdir()
    return dg.DagsterInstance.from_config(str(home))


@pytest.mark.parametrize("source", ["docker/dagster/dagster.yaml", ".dagster/dagster.yaml"])
def test_each_instance_configuration_loads_with_the_run_queue(tmp_path, monkeypatch, source):
    from dagster._core.run_coordinator import QueuedRunCoordinator  # noqa: PLC0415

    instance = _instance(tmp_path / "home", monkeypatch, PROJECT / source)
    try:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 2
        [limit] = queue.tag_concurrency_limits
        assert limit["key"] == "stock_mlops/location" and limit["limit"] == 1
        assert queue.max_user_code_failure_retries == 3
        assert instance.run_retries_enabled
        assert instance.run_monitoring_enabled
        assert instance.code_server_process_startup_timeout == 600
        # Storage is where the configuration says: the volume in the image, DAGSTER_HOME here.
        assert instance.get_runs() == []
        storage_root = tmp_path / "home" / ("storage" if source.startswith("docker") else "")
        assert (storage_root / "history" / "runs.db").is_file()
    finally:
        instance.dispose()


def test_both_instance_configurations_share_the_queue_and_retries():
    container = yaml.safe_load((PROJECT / "docker/dagster/dagster.yaml").read_text())
    local = yaml.safe_load((PROJECT / ".dagster/dagster.yaml").read_text())
    assert {k: container[k] for k in SHARED_INSTANCE_KEYS} == {
        k: local[k] for k in SHARED_INSTANCE_KEYS
    }


def test_make_orchestrate_serves_on_loopback_with_the_instance_in_the_project():
    # -n prints the commands without running them; -o: never (re)build the environment here.
    printed = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "orchestrate"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    home = PROJECT / ".dagster"
    assert f'--output "{home}/workspace.yaml"' in printed
    assert "python -m stock_mlops.orchestration workspace" in printed
    assert f'DAGSTER_HOME="{home}" .venv/bin/dagster dev -h 127.0.0.1 -p 3000' in printed
    ignored = subprocess.run(
        ["git", "check-ignore", ".dagster/storage/runs.db", ".dagster/workspace.yaml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert ignored == [".dagster/storage/runs.db", ".dagster/workspace.yaml"]
    tracked = subprocess.run(
        ["git", "check-ignore", "-q", ".dagster/dagster.yaml"], cwd=PROJECT, check=False
    )
    assert tracked.returncode == 1  # not ignored: the instance configuration is committed
