"""The `mlflow server` flags of cluster/mlflow/compose.yaml, run for real: only the allowed Host headers pass."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # ~20 s: the server starts in ~15-20 s on two shared cores

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60
BIND_IP = "10.0.0.7"  # stands for the head's private IP that cluster nodes put in MLFLOW_TRACKING_URI


def compose_command(env: dict[str, str]) -> list[str]:
    """The mlflow service's command with compose's ${VAR}, ${VAR:-default} and ${VAR:?error} resolved."""
    compose = yaml.safe_load((REPO / "cluster" / "mlflow" / "compose.yaml").read_text())

    def resolve(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        assert op == ":-", f"{name} has no default and the test did not set it"
        return rest

    return [
        re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", resolve, arg)
        for arg in compose["services"]["mlflow"]["command"]
    ]


def status_for_host(port: int, host: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": host}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def mlflow_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = compose_command(
        {"MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"), "MLFLOW_BIND_IP": BIND_IP}
    )
    # Same flags as the container, except: loopback instead of all interfaces, a free port, one worker.
    command = [
        {
            "--host=0.0.0.0": "--host=127.0.0.1",
            "--port=5000": f"--port={port}",
            "--workers=4": "--workers=1",
        }.get(a, a)
        for a in command
    ]
    assert command[:2] == ["mlflow", "server"]
    env = {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "PATH": str(Path(sys.executable).parent),
    }
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *command[1:]],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the CLI starts uvicorn as a child
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (_listening(port) and status_for_host(port, f"127.0.0.1:{port}") == 200):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_server_answers_tunnel_and_cluster_hosts_and_refuses_others(mlflow_server):
    port = mlflow_server
    assert status_for_host(port, f"localhost:{port}") == 200  # ssh -L tunnel from a laptop
    assert status_for_host(port, f"{BIND_IP}:5000") == 200  # cluster nodes' MLFLOW_TRACKING_URI
    assert status_for_host(port, "evil.example.com") == 403  # DNS rebinding
    assert status_for_host(port, "10.0.0.8:5000") == 403  # another private address: not ours
