"""The `mlflow server` of cluster/mlflow/compose.yaml (flags, basic-auth environment), run for real: only the
allowed Host headers pass, and only with the credentials every cluster client gets from the shared secret."""

from __future__ import annotations

import base64
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
START_TIMEOUT_S = 120  # generous: on loaded cores the first request (auth store set-up) can take > 10 s
BIND_IP = "10.0.0.7"  # stands for the head's private IP that cluster nodes put in MLFLOW_TRACKING_URI
# What `python cluster/launch.py secret` and the head's ~/mlflow.env would hold (test values).
SECRETS = {
    "MLFLOW_TRACKING_USERNAME": "dtgan",
    "MLFLOW_TRACKING_PASSWORD": "test-password-0123456789",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-csrf-key",
    "POSTGRES_PASSWORD": "unused-here",
}
CREDENTIALS = (SECRETS["MLFLOW_TRACKING_USERNAME"], SECRETS["MLFLOW_TRACKING_PASSWORD"])


def _resolve(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} resolved."""

    def resolve(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        assert op == ":-", f"{name} has no default and the test did not set it"
        return rest

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", resolve, text)


def _service() -> dict:
    return yaml.safe_load((REPO / "cluster" / "mlflow" / "compose.yaml").read_text())["services"]["mlflow"]


def compose_command(env: dict[str, str]) -> list[str]:
    """The mlflow service's command, variables resolved."""
    return [_resolve(arg, env) for arg in _service()["command"]]


def compose_environment(env: dict[str, str]) -> dict[str, str]:
    """The mlflow service's environment, variables resolved."""
    return {k: _resolve(str(v), env) for k, v in _service()["environment"].items()}


def status_for_host(port: int, host: str, credentials: tuple[str, str] | None = CREDENTIALS) -> int:
    headers = {"Host": host}
    if credentials is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1", headers=headers
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
    variables = {
        "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
        "MLFLOW_BIND_IP": BIND_IP,
        **SECRETS,
    }
    command = compose_command(variables)
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
    # The image's basic_auth.ini, its user store moved from the container's volume into tmp_path.
    ini = (REPO / "cluster" / "mlflow" / "basic_auth.ini").read_text()
    ini = re.sub(r"database_uri = .*", f"database_uri = sqlite:///{tmp_path}/basic_auth.db", ini)
    (tmp_path / "basic_auth.ini").write_text(ini)
    env = {
        **compose_environment(variables),
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
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
        while not (_listening(port) and _answers(port)):
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


def _answers(port: int) -> bool:
    """The server answers an authenticated request with 200; a request that times out means not ready yet."""
    try:
        return status_for_host(port, f"127.0.0.1:{port}") == 200
    except (TimeoutError, ConnectionError, urllib.error.URLError):
        return False


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


def test_server_refuses_requests_without_the_clusters_credentials(mlflow_server):
    port = mlflow_server
    host = f"127.0.0.1:{port}"
    assert status_for_host(port, host, credentials=None) == 401
    assert status_for_host(port, host, credentials=(CREDENTIALS[0], "wrong-password-123")) == 401
    assert status_for_host(port, host) == 200


def test_an_mlflow_client_authenticates_from_the_environment_the_cluster_sets(mlflow_server, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = f"http://127.0.0.1:{mlflow_server}"
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(MlflowException):
        MlflowClient(uri).create_experiment("refused")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", SECRETS["MLFLOW_TRACKING_USERNAME"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRETS["MLFLOW_TRACKING_PASSWORD"])
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("ablation-smoke")
    assert client.get_experiment(experiment_id).name == "ablation-smoke"
