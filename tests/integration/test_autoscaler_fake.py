"""Ray's autoscaler adds a GPU worker node when a task needs a GPU and removes it once idle.

Uses Ray's fake multi-node provider (`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config ...`):
worker "nodes" are extra raylets on this machine, launched and terminated by the real autoscaler.
The node types mirror ray_cluster.yaml: a head that offers TRAIN_DRIVER and no CPU for training, and a
GPU worker type that scales from zero.
"""

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
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.ray]

RAY_BIN = Path(sys.executable).with_name("ray")
HEAD_START_TIMEOUT_S = 60
DRIVER_TIMEOUT_S = 150  # the driver itself bounds scale-up and scale-down by 60 s each
STOP_GRACE_S = 5
IDLE_TIMEOUT_MINUTES = 0.1  # 6 s; the production value in ray_cluster.yaml is minutes

# Runs as a separate process so that the test process never holds a Ray connection.
DRIVER = r"""
import json, sys, time
import ray

address, bound_s = sys.argv[1], float(sys.argv[2])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
head_id = ray.get_runtime_context().get_node_id()

def gpu_nodes():
    return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU", 0) > 0]

@ray.remote(num_gpus=1, num_cpus=0)
def trial_step():
    import os
    return ray.get_runtime_context().get_node_id(), os.environ.get("CUDA_VISIBLE_DEVICES")

out = {"head_id": head_id, "gpu_nodes_before": len(gpu_nodes())}
t0 = time.monotonic()
ref = trial_step.remote()
ready, _ = ray.wait([ref], timeout=bound_s)
if not ready:
    out["error"] = f"no GPU node within {bound_s} s"
    print(json.dumps(out)); sys.exit(0)
out["task_node_id"], out["cuda_visible_devices"] = ray.get(ref)
out["scale_up_s"] = round(time.monotonic() - t0, 1)
nodes = gpu_nodes()
out["gpu_nodes_while_busy"] = len(nodes)
out["gpu_node_resources"] = {k: v for k, v in nodes[0]["Resources"].items() if "node:" not in k} if nodes else {}
t1 = time.monotonic()
while gpu_nodes() and time.monotonic() - t1 < bound_s:
    time.sleep(0.5)
out["scale_down_s"] = round(time.monotonic() - t1, 1)
out["gpu_nodes_after"] = len(gpu_nodes())
print(json.dumps(out))
"""


def _free_ports(n: int) -> list[int]:
    """Ask the OS for n distinct free TCP ports (sockets held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _autoscaling_config(gcs_address: str) -> dict:
    """Every top-level field filled: the wheel lacks the fake provider's defaults file."""
    return {
        "cluster_name": "dtgan-fake",
        "max_workers": 2,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "docker": {},
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "auth": {},
        "available_node_types": {
            # As in ray_cluster.yaml: trial drivers sit on the head, which offers no CPU for training.
            "ray.head.default": {
                "resources": {"CPU": 0, "TRAIN_DRIVER": 2},
                "node_config": {},
                "max_workers": 0,
            },
            "gpu_1x": {
                "resources": {"CPU": 1, "GPU": 1},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 2,
            },
        },
        "head_node_type": "ray.head.default",
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@pytest.fixture
def fake_autoscaling_head():
    """A private Ray head with the fake autoscaler; yields (address, env); always stopped afterwards."""
    import ray.util

    tmp = Path(tempfile.mkdtemp(prefix="dtgan-ray-", dir="/tmp"))  # short: Unix socket paths <= 107 chars
    gcs_port, client_port, agent_port, metrics_port = _free_ports(4)
    ip = ray.util.get_node_ip_address()
    config_path = tmp / "autoscaling.yaml"
    config_path.write_text(yaml.safe_dump(_autoscaling_config(f"{ip}:{gcs_port}")))
    env = {
        **os.environ,
        "RAY_FAKE_CLUSTER": "1",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        # Token auth as on the real cluster; a private token so no one else's ~/.ray/auth_token matters.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        # Fake worker raylets are started by the autoscaler; keep their session dirs private too.
        "RAY_TMPDIR": str(tmp),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log = open(tmp / "ray_start.log", "wb")  # noqa: SIM115 - closed in finally
    head = subprocess.Popen(
        [
            str(RAY_BIN),
            "start",
            "--head",
            "--block",
            f"--autoscaling-config={config_path}",
            f"--node-ip-address={ip}",
            f"--port={gcs_port}",
            f"--ray-client-server-port={client_port}",
            f"--dashboard-agent-listen-port={agent_port}",
            f"--metrics-export-port={metrics_port}",
            "--include-dashboard=false",
            f"--temp-dir={tmp}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while not _port_open(ip, gcs_port):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray head did not start: {(tmp / 'ray_start.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"{ip}:{gcs_port}", env, tmp
    finally:
        # Kill only our own `ray start --block` (it stops its raylet, GCS and monitor); never `ray stop`.
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGTERM)
            try:
                head.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:  # its graceful drain takes ~30 s; nothing here needs it
                os.killpg(head.pid, signal.SIGKILL)
                head.wait(timeout=10)
        log.close()
        _kill_leftover_fake_nodes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _port_open(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def _kill_leftover_fake_nodes(tmp: Path) -> None:
    """Fake worker raylets are our children's children; end those whose command line names our temp dir."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmdline and int(proc.name) != os.getpid():
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


def test_gpu_task_adds_a_gpu_node_and_idle_removes_it(fake_autoscaling_head):
    address, env, tmp = fake_autoscaling_head
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), address, "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print("fake autoscaler:", json.dumps(result))  # visible with -s: the measured timings

    assert "error" not in result, result
    assert result["gpu_nodes_before"] == 0  # scales from zero
    assert result["task_node_id"] != result["head_id"]  # the GPU task ran on the added worker
    assert result["cuda_visible_devices"] == "0"  # Ray handed it the node's single (fake) GPU
    assert result["gpu_nodes_while_busy"] == 1
    assert result["gpu_node_resources"]["GPU"] == 1.0
    assert result["scale_up_s"] <= 60
    assert result["gpu_nodes_after"] == 0  # removed once idle
    assert result["scale_down_s"] <= 60
