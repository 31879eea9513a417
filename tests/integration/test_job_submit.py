"""`ray start --head` + `ray job submit --working-dir .`: the smoke ablation runs as a Ray job and lands in MLflow."""

from __future__ import annotations

import json
import os
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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the job must ship dtgan itself
    env["RAY_AUTH_MODE"] = "token"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # `python` = this venv
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus", "2", "--resources", json.dumps({"TRAIN_DRIVER": 4}),
         "--port", str(port), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--dashboard-agent-listen-port", str(agent_http), "--dashboard-agent-grpc-port", str(agent_grpc),
         "--metrics-export-port", str(metrics), "--runtime-env-agent-port", str(runtime_env_agent),
         "--temp-dir", temp_dir, "--disable-usage-stats"],
        env=env, stdout=(tmp_path / "head.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
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
        [RAY, "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
         "python", "experiments/ablation.py", "--preset", "smoke", *[a for o in overrides for a in ("-o", o)]],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=JOB_TIMEOUT_S,
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
