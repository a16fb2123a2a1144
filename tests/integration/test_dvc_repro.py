"""DVC over the Kedro stages, for real: `dvc repro`, `dvc exp`, remotes and failures.

One temporary copy of the project (git init, as a fresh clone) where team red runs on two bundled
symbols with a one-epoch Ludwig model, set the way a team sets anything: in its own parameter
files and globals.yml, which the stages track. Kedro's start-up costs 30-55 s per stage here, so
one real `dvc repro` of red's chain is shared by every test below (in order), and the question
"what would rerun" is asked with `dvc status` and the DAG rather than by running it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from helpers import PROJECT
from test_dvc_stages import missing_plot_datasets

pytestmark = pytest.mark.slow

TINY_LUDWIG = {
    "input_features": [
        {"name": "log_return_1d", "type": "number"},
        {"name": "rsi_14", "type": "number"},
    ],
    "output_features": [{"name": "target_return_1d", "type": "number"}],
    "combiner": {"type": "concat", "output_size": 8},
    "trainer": {"epochs": 1, "batch_size": 256, "learning_rate": 0.001},
}
# What `dvc repro trading@red backtest@red` runs in a fresh clone: red's chain, nothing of blue.
RED_CHAIN = [
    "data_ingestion@red",
    "feature_engineering@red",
    "training@red",
    "inference@red",
    "trading@red",
    "backtest@red",
]
TARGETS = ("trading@red", "backtest@red")
RED = "data/red"
PREDICTIONS = f"{RED}/07_model_output/predictions.parquet"
ORDERS = f"{RED}/07_model_output/orders.parquet"
BROKER = f"{RED}/03_primary/broker"
BUCKET = "stock-mlops-dvc"


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _digests(root: Path, relative: str) -> dict[str, str]:
    """md5 of every file under ``root/relative`` (a file or a folder), by relative path."""
    target = root / relative
    files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
    return {
        p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()  # noqa: S324
        for p in files
    }


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


class DvcProject:
    """A git + DVC copy of the project and the environment its commands run in."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.first_repro = ""

    def run(self, *args: str, check: bool = True, env: dict | None = None, cwd: Path | None = None):
        result = subprocess.run(
            args,
            cwd=cwd or self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-4000:]}\n"
                f"{result.stderr[-4000:]}"
            )
        return result

    def dvc(self, *args: str, **kwargs):
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, **kwargs)

    def git(self, *args: str, **kwargs):
        return self.run("git", *args, **kwargs)

    def outputs(self, stages: list[str]) -> dict[str, str]:
        """md5 of every file of the given stages' outputs, as recorded by dvc.lock."""
        lock = yaml.safe_load((self.root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
        digests: dict[str, str] = {}
        for stage in stages:
            for out in lock[stage]["outs"]:
                digests |= _digests(self.root, out["path"])
        return digests


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory) -> DvcProject:
    """The copy after `dvc repro trading@red backtest@red`, with dvc.lock committed and pushed."""
    base = tmp_path_factory.mktemp("dvc")
    root = base / "stock-mlops"
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=PROJECT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = PROJECT / name
        if source.is_file() and not source.is_symlink():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DVC_", "AWS_", "MLFLOW_", "KEDRO_"))
    }
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # The copy's own code, also for `python -m stock_mlops.dvc_stages`.
        "PYTHONPATH": str(root / "src"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "COLUMNS": "200",
        "DVC_GLOBAL_CONFIG_DIR": str(base / "dvc-global"),
        "DVC_SITE_CACHE_DIR": str(base / "dvc-site"),
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        # No credentials from the machine reach a test: each test that needs them passes them.
        "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-credentials"),
        "AWS_CONFIG_FILE": str(base / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    project = DvcProject(root, env)
    project.git("init", "-q")
    project.git("config", "user.name", "test")
    project.git("config", "user.email", "test@example.invalid")
    project.git("add", "-A")
    project.git("commit", "-qm", "the project as cloned")

    # Team red on tiny data, through its own files (tracked params), as a team would set them.
    red = root / "conf" / "red"
    _write_yaml(red / "ludwig" / "tiny.yaml", TINY_LUDWIG)
    globals_ = yaml.safe_load((red / "globals.yml").read_text())
    _write_yaml(red / "globals.yml", {**globals_, "ludwig_config": "conf/red/ludwig/tiny.yaml"})
    _write_yaml(
        red / "parameters_data_ingestion.yml", {"data_ingestion": {"symbols": ["AAPL", "MSFT"]}}
    )
    _write_yaml(red / "parameters_inference.yml", {"inference": {"model_source": "latest"}})
    _write_yaml(red / "parameters_trading.yml", {"trading": {"threshold": 0.0}})
    written = project.run(sys.executable, "-m", "stock_mlops.dvc_stages").stdout
    assert "wrote dvc/teams.yaml" in written  # the Ludwig config the stage depends on moved
    project.git("add", "-A")
    project.git("commit", "-qm", "red on two symbols and a one-epoch model")

    project.first_repro = project.dvc("repro", *TARGETS).stdout
    project.git("add", "dvc.lock")
    project.git("commit", "-qm", "dvc.lock of the first run")
    project.dvc("push")
    return project


def test_a_fresh_clone_runs_the_chain_and_a_second_repro_runs_nothing(dvc_project):
    assert sorted(_ran(dvc_project.first_repro)) == sorted(RED_CHAIN)
    for name in (PREDICTIONS, ORDERS, f"{RED}/08_reporting/evaluation_metrics.json"):
        assert (dvc_project.root / name).is_file(), name
    orders = pd.read_parquet(dvc_project.root / ORDERS)
    assert len(orders) > 0  # threshold 0 with a learned model: the later checks have rows to keep

    again = dvc_project.dvc("repro", *TARGETS).stdout
    assert _ran(again) == []
    assert all(f"Stage '{stage}' didn't change, skipping" in again for stage in RED_CHAIN)
    status = dvc_project.dvc("status", *TARGETS).stdout
    assert "Data and pipelines are up to date." in status


def test_the_default_local_remote_serves_a_fresh_clone(dvc_project):
    # .dvc/config: ../stock-mlops-dvc-remote beside the clone, so clones side by side share it.
    assert (dvc_project.root.parent / "stock-mlops-dvc-remote" / "files" / "md5").is_dir()
    clone = dvc_project.root.parent / "clone-local"
    dvc_project.git("clone", "-q", str(dvc_project.root), str(clone))
    # --with-deps: the targets' upstream stages too, so the whole chain is served.
    pulled = dvc_project.dvc("pull", "--with-deps", *TARGETS, cwd=clone)
    got = DvcProject(clone, dvc_project.env).outputs(RED_CHAIN)
    assert got == dvc_project.outputs(RED_CHAIN), pulled.stdout[-2000:] + pulled.stderr[-2000:]
    again = dvc_project.dvc("repro", *TARGETS, cwd=clone).stdout
    assert _ran(again) == []


def test_metrics_show_the_team_figures(dvc_project):
    result = dvc_project.dvc("metrics", "show", "--json")
    shown = json.loads(result.stdout)
    # The workspace is "workspace" or "" depending on whether DVC met an unreadable file.
    key = "workspace" if "workspace" in shown else ""
    assert key in shown, result.stdout[-2000:] + result.stderr[-2000:]
    workspace = shown[key]["data"]
    evaluation = workspace[f"{RED}/08_reporting/evaluation_metrics.json"]["data"]
    backtest = workspace[f"{RED}/08_reporting/backtest_metrics.json"]["data"]
    assert {"ludwig", "naive_last_close"} <= set(evaluation)
    assert evaluation["ludwig"]["mae"] > 0
    assert "sharpe" in backtest or "total_return" in backtest


@pytest.fixture(scope="module")
def s3_remote(dvc_project):
    """moto's S3 server on loopback holding the DVC bucket; the `minio` remote points at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    dvc_project.dvc("remote", "modify", "--local", "minio", "endpointurl", endpoint)
    yield endpoint, keys, client
    server.stop()


def _clone(project: DvcProject, name: str, endpoint: str) -> Path:
    clone = project.root.parent / name
    project.git("clone", "-q", str(project.root), str(clone))
    project.dvc("remote", "modify", "--local", "minio", "endpointurl", endpoint, cwd=clone)
    return clone


def test_push_to_s3_and_pull_into_a_fresh_clone_gives_identical_files(dvc_project, s3_remote):
    endpoint, keys, client = s3_remote
    pushed = dvc_project.dvc("push", "-r", "minio", "--with-deps", *TARGETS, env=keys).stdout
    assert re.search(r"\d+ files? pushed", pushed), pushed
    assert client.list_objects_v2(Bucket=BUCKET, Prefix="stock-mlops/files/md5/")["KeyCount"] > 0

    clone = _clone(dvc_project, "clone-s3", endpoint)
    dvc_project.dvc("pull", "-r", "minio", "--with-deps", *TARGETS, env=keys, cwd=clone)
    source = dvc_project.outputs(RED_CHAIN)
    pulled = DvcProject(clone, dvc_project.env).outputs(RED_CHAIN)
    assert pulled == source and len(source) > 10
    status = dvc_project.dvc("status", *TARGETS, cwd=clone).stdout
    assert "Data and pipelines are up to date." in status


def test_a_corrupted_object_is_caught_by_pull_and_repaired_by_pushing_again(dvc_project, s3_remote):
    endpoint, keys, client = s3_remote
    lock = yaml.safe_load((dvc_project.root / "dvc.lock").read_text())["stages"]
    # dvc.lock lists metrics and plots among a stage's outs.
    out = next(
        o for o in lock["backtest@red"]["outs"] if o["path"].endswith("backtest_metrics.json")
    )
    key = f"stock-mlops/files/md5/{out['md5'][:2]}/{out['md5'][2:]}"
    good = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=good[:-1] + bytes([good[-1] ^ 1]))

    clone = _clone(dvc_project, "clone-corrupt", endpoint)
    pulled = dvc_project.dvc("pull", "-r", "minio", *TARGETS, env=keys, cwd=clone, check=False)
    assert pulled.returncode != 0
    assert "Checkout failed for following targets" in pulled.stderr
    assert out["path"] in pulled.stderr
    assert not (clone / out["path"]).exists()  # no wrong bytes in the workspace
    # `dvc push` only checks that an object exists: remove the bad one, then push again.
    client.delete_object(Bucket=BUCKET, Key=key)
    dvc_project.dvc("push", "-r", "minio", *TARGETS, env=keys)
    dvc_project.dvc("pull", "-r", "minio", "--with-deps", *TARGETS, env=keys, cwd=clone)
    assert (clone / out["path"]).read_bytes() == good


def test_a_missing_remote_or_missing_credentials_fail_clearly_and_lose_nothing(
    dvc_project, s3_remote
):
    cache = sorted(p.name for p in (dvc_project.root / ".dvc" / "cache").rglob("*"))
    unknown = dvc_project.dvc("push", "-r", "nosuch", check=False)
    assert unknown.returncode != 0
    assert "remote 'nosuch' doesn't exist" in unknown.stderr
    no_keys = dvc_project.dvc("push", "-r", "minio", *TARGETS, check=False)
    assert no_keys.returncode != 0
    assert "Unable to locate credentials" in no_keys.stderr
    endpoint, keys, _ = s3_remote
    dvc_project.dvc("remote", "add", "--local", "nobucket", "s3://no-such-bucket/stock-mlops")
    dvc_project.dvc("remote", "modify", "--local", "nobucket", "endpointurl", endpoint)
    no_bucket = dvc_project.dvc("push", "-r", "nobucket", *TARGETS, env=keys, check=False)
    dvc_project.dvc("remote", "remove", "--local", "nobucket")
    assert no_bucket.returncode != 0
    assert "The specified bucket does not exist" in no_bucket.stderr
    assert "Traceback" not in no_keys.stderr + unknown.stderr + no_bucket.stderr
    assert sorted(p.name for p in (dvc_project.root / ".dvc" / "cache").rglob("*")) == cache
    status = dvc_project.dvc("status", *TARGETS).stdout
    assert "Data and pipelines are up to date." in status


def _dag_edges(project: DvcProject) -> set[tuple[str, str]]:
    dot = project.dvc("dag", "--dot").stdout
    return set(re.findall(r'"([^"]+)" -> "([^"]+)"', dot))


def test_a_red_threshold_change_invalidates_only_red_trading_backtest_and_the_competition(
    dvc_project,
):
    trading = dvc_project.root / "conf" / "red" / "parameters_trading.yml"
    original = trading.read_text()
    _write_yaml(trading, {"trading": {"threshold": 0.5}})
    try:
        status = json.loads(dvc_project.dvc("status", "--json").stdout)
        params = json.loads(dvc_project.dvc("params", "diff", "--json").stdout)
    finally:
        trading.write_text(original)
    ran_before = set(RED_CHAIN)
    changed = {stage for stage in status if stage in ran_before}
    assert changed == {"trading@red", "backtest@red"}
    for stage in changed:
        reasons = json.dumps(status[stage])
        assert "conf/red/parameters_trading.yml" in reasons and "trading" in reasons
    threshold = params["conf/red/parameters_trading.yml"]["trading.threshold"]
    assert {k: threshold[k] for k in ("old", "new")} == {
        "old": 0.0,
        "new": 0.5,
    }
    # Downstream of those two, in DVC's own graph: the competition, and no stage of any team.
    edges = _dag_edges(dvc_project)
    downstream, frontier = set(), {"trading@red", "backtest@red"}
    while frontier:
        frontier = {b for a, b in edges if a in frontier} - downstream
        downstream |= frontier
    assert downstream == {"competition"}
    # Nothing of blue reads red's file: blue's stages depend only on blue's.
    assert not any("blue" in stage for stage in status if "conf/red" in json.dumps(status[stage]))


def test_an_experiment_reruns_only_what_changed_and_keeps_every_logged_row(dvc_project):
    predictions = pd.read_parquet(dvc_project.root / PREDICTIONS)
    orders = pd.read_parquet(dvc_project.root / ORDERS)
    broker_before = _digests(dvc_project.root, BROKER)
    run = dvc_project.dvc(
        "exp",
        "run",
        "-n",
        "red-naive-high-threshold",
        "-S",
        "conf/red/parameters_trading.yml:trading.threshold=0.5",
        "-S",
        "conf/red/parameters_inference.yml:inference.model_source=champion",
        *TARGETS,
    ).stdout
    assert sorted(_ran(run)) == ["backtest@red", "inference@red", "trading@red"]

    # The logs only grew: every row logged before is still there, unchanged.
    after_predictions = pd.read_parquet(dvc_project.root / PREDICTIONS)
    after_orders = pd.read_parquet(dvc_project.root / ORDERS)
    assert len(after_predictions) > len(predictions)  # the naive champion's rows were added
    key = ["team", "symbol", "target_date", "model_version"]
    kept = predictions.merge(
        after_predictions, on=list(predictions.columns), how="left", indicator=True
    )
    assert (kept["_merge"] == "both").all() and not after_predictions.duplicated(key).any()
    kept = orders.merge(after_orders, on=list(orders.columns), how="left", indicator=True)
    assert (kept["_merge"] == "both").all() and len(after_orders) >= len(orders)
    # The broker kept every earlier snapshot and submission and added this run's snapshot.
    broker_after = _digests(dvc_project.root, BROKER)
    earlier = {k: v for k, v in broker_before.items() if not k.endswith("local_account.json")}
    assert earlier.items() <= broker_after.items() and len(broker_after) > len(broker_before)

    shown = json.loads(dvc_project.dvc("exp", "show", "--json").stdout)
    text = json.dumps(shown)
    assert "red-naive-high-threshold" in text and "backtest_metrics.json" in text
    diff = json.loads(dvc_project.dvc("metrics", "diff", "--json").stdout)
    backtest = diff[f"{RED}/08_reporting/backtest_metrics.json"]
    assert any(change["old"] != change["new"] for change in backtest.values())


def test_plots_diff_shows_both_revisions_of_equity_drawdown(dvc_project):
    missing = missing_plot_datasets()
    if missing:
        pytest.skip(f"not in main yet: {', '.join(missing)}")
    plots = json.loads(dvc_project.dvc("plots", "diff", "HEAD", "--json").stdout)["data"]
    equity = plots[f"{RED}/08_reporting/backtest_equity_plot.csv"][0]
    assert sorted(equity["revisions"]) == ["HEAD", "workspace"]
    spec = equity["content"]
    charts = [chart["encoding"]["y"]["title"] for chart in spec["vconcat"]]
    assert charts == ["equity", "drawdown"]
    rows = pd.DataFrame(spec["data"]["values"])
    assert {"date", "equity", "benchmark_equity", "drawdown", "benchmark_drawdown"} <= set(rows)
    # The threshold changed the strategy, not buy and hold.
    by_rev = {rev: frame.reset_index(drop=True) for rev, frame in rows.groupby("rev")}
    assert (by_rev["HEAD"]["benchmark_equity"] == by_rev["workspace"]["benchmark_equity"]).all()
    assert not (by_rev["HEAD"]["equity"] == by_rev["workspace"]["equity"]).all()
    # The predictions plot belongs to monitoring@red, which this chain does not run (evidently
    # costs a minute more); tests/test_dvc_stages.py checks its declaration.


def test_a_failed_stage_leaves_its_previous_outputs_as_they_were(dvc_project):
    trading_outs = [ORDERS, BROKER, f"{RED}/08_reporting/order_reconciliation.csv"]
    before = {}
    for name in trading_outs:
        before |= _digests(dvc_project.root, name)
    predictions = dvc_project.root / PREDICTIONS
    good = predictions.read_bytes()
    # A dependency that Kedro cannot read: trading saves the broker snapshot, then fails.
    predictions.write_bytes(b"not a parquet file")
    failed = dvc_project.dvc("repro", "--single-item", "trading@red", check=False)
    assert failed.returncode != 0
    assert "failed to reproduce 'trading@red'" in failed.stderr
    said = " ".join((failed.stdout + failed.stderr).split())  # Kedro's log lines wrap
    assert "its previous outputs are back as the last successful run left them" in said
    after = {}
    for name in trading_outs:
        after |= _digests(dvc_project.root, name)
    assert after == before
    assert not list((dvc_project.root / ".dvc" / "tmp").glob("stock-mlops-stage-guard/*"))

    dvc_project.dvc("checkout", "--force", PREDICTIONS)
    assert predictions.read_bytes() == good
    status = dvc_project.dvc("status", *TARGETS).stdout
    assert "Data and pipelines are up to date." in status
