"""`ray start --head` + `ray job submit --working-dir .`: the smoke ablation runs as a Ray job and lands in MLflow."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from studies_testdata import tiny_benchmark, tiny_study_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
HEAD_START_TIMEOUT_S = 120
JOB_TIMEOUT_S = 600


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture()
def ray_head(tmp_path):
    """A private Ray head (its own ports and temp dir), stopped by killing its `ray start --block` process."""
    port, dashboard, agent_http, agent_grpc, metrics, runtime_env_agent = free_ports(6)
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_AUTH_TOKEN")
    }  # the job ships dtgan
    # A token of its own: `ray start` with RAY_AUTH_MODE=token refuses to start without one, and a machine's
    # ~/.ray/auth_token (left by an earlier local Ray) must not be what makes this test pass.
    token = tmp_path / "ray_auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env["RAY_AUTH_MODE"] = "token"
    env["RAY_AUTH_TOKEN_PATH"] = str(token)
    env["DTGAN_HOME"] = str(tmp_path / "dtgan_home")  # where jobs keep results (search/durable.py)
    for name in ("MLFLOW_TRACKING_URI", "DTGAN_STORAGE_PATH"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )  # `python` = this venv
    head = subprocess.Popen(
        [
            RAY,
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--resources",
            json.dumps({"TRAIN_DRIVER": 4}),
            "--port",
            str(port),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dashboard),
            "--dashboard-agent-listen-port",
            str(agent_http),
            "--dashboard-agent-grpc-port",
            str(agent_grpc),
            "--metrics-export-port",
            str(metrics),
            "--runtime-env-agent-port",
            str(runtime_env_agent),
            "--temp-dir",
            temp_dir,
            "--disable-usage-stats",
        ],
        env=env,
        stdout=(tmp_path / "head.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_until_up(head, address, tmp_path / "head.log")
        yield address, env
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` drains and stops its own processes
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def wait_until_up(head: subprocess.Popen, address: str, log: Path) -> None:
    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    while True:
        assert head.poll() is None, log.read_text()[-3000:]
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (401 without a token: token authentication is on)
        except OSError:
            assert time.monotonic() < deadline, "the Ray head did not start in time"
            time.sleep(1)


def test_submitted_smoke_ablation_succeeds_and_mlflow_holds_its_runs(ray_head, tmp_path):
    address, env = ray_head
    data_path = tiny_benchmark(tmp_path)
    overrides = [*tiny_study_overrides(tmp_path, data_path), "study.variants=[b]"]
    job = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            address,
            "--working-dir",
            str(REPO),
            "--",
            "python",
            "experiments/ablation.py",
            "--preset",
            "smoke",
            *[a for o in overrides for a in ("-o", o)],
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
    assert "succeeded" in job.stdout + job.stderr
    assert "| b-seed777 | completed |" in job.stdout

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = client.search_experiments(filter_string="name = 'ablation-smoke'")
    parents = client.search_runs([experiment.experiment_id], "tags.run_kind = 'study'")
    trials = client.search_runs([experiment.experiment_id], "tags.run_kind = 'trial'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert [r.data.tags["variant"] for r in trials] == ["b"]
    assert all(r.info.status == "FINISHED" and r.data.metrics["eval/fid_mix"] > 0 for r in trials)


def _tracked_checkout(folder: Path) -> Path:
    """A copy of what git tracks (working-tree versions): no data/, no .venv, no earlier results."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    for name in filter(None, (f.decode() for f in files)):
        source = REPO / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def test_the_readme_job_command_works_from_a_fresh_checkout_and_keeps_its_results(ray_head, tmp_path):
    address, env = ray_head
    checkout = _tracked_checkout(tmp_path / "checkout")
    assert not (checkout / "data").exists()
    home = Path(env["DTGAN_HOME"])
    # The README's command (smoke instead of sdi, whose data is not embedded) with the tiny study's sizes; no
    # data path, no tracking URI, no storage path: the defaults must work and survive the job's working dir.
    sizes = [
        o
        for o in tiny_study_overrides(tmp_path, tmp_path / "unused")
        if o.split("=", 1)[0]
        not in (
            "data.path",
            "tracking.tracking_uri",
            "tracking.artifact_root",
            "study.storage_path",
            "evaluation.cache_dir",
        )
    ]
    job = subprocess.run(
        [
            RAY,
            "job",
            "submit",
            "--address",
            address,
            "--working-dir",
            ".",
            "--",
            "python",
            "experiments/ablation.py",
            "--preset",
            "smoke",
            "-o",
            "study.variants=[b]",
            *[a for o in sizes for a in ("-o", o)],
        ],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    out = job.stdout + job.stderr
    assert job.returncode == 0, out[-5000:]
    assert "| b-seed777 | completed |" in job.stdout and "deleted when the job ends" in out
    assert (home / "ray_results" / "data" / "benchmark.parquet").is_file()
    assert (
        f"sqlite:///{home / 'mlflow.db'}" in job.stdout
    )  # the printed `mlflow ui` line names a lasting file
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (experiment,) = client.search_experiments(filter_string="name = 'ablation-smoke'")
    (trial,) = client.search_runs([experiment.experiment_id], "tags.run_kind = 'trial'")
    assert trial.info.status == "FINISHED" and trial.data.metrics["eval/fid_mix"] > 0
    assert str(home / "mlartifacts") in client.get_experiment(experiment.experiment_id).artifact_location
