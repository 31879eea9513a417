"""A Ray cluster on this machine shaped like ``ray_cluster.yaml``: Ray's fake multi-node provider.

``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...`` runs the real autoscaler; its worker "nodes" are
extra raylets on this machine that it launches and terminates. The head is started with the resources
``ray_cluster.yaml`` gives its head (the fake provider does not apply them to a head started by hand), and the
worker node types carry the CPU/GPU shapes of ``ray_cluster.yaml``'s worker types, scaling from zero.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RAY_BIN = Path(sys.executable).with_name("ray")
HEAD_START_TIMEOUT_S = 60
STOP_GRACE_S = 5


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on loopback (sockets held open until all are chosen)."""
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


def shipped_cluster() -> dict:
    """ray_cluster.yaml as committed."""
    return yaml.safe_load((REPO / "ray_cluster.yaml").read_text())


def shipped_head_resources() -> dict[str, float]:
    config = shipped_cluster()
    return dict(config["available_node_types"][config["head_node_type"]]["resources"])


def shipped_worker_types(max_workers: int) -> dict[str, dict]:
    """The worker node types of ray_cluster.yaml (their names and CPU/GPU shapes, from zero), at most
    ``max_workers`` nodes each; the cloud's node_config is dropped."""
    config = shipped_cluster()
    return {
        name: {
            "resources": dict(spec["resources"]),
            "node_config": {},
            "min_workers": 0,
            "max_workers": min(int(spec.get("max_workers", max_workers)), max_workers),
            **({"priority": spec["priority"]} if "priority" in spec else {}),
        }
        for name, spec in config["available_node_types"].items()
        if name != config["head_node_type"]
    }


def autoscaling_config(
    gcs_address: str, head_resources: dict, worker_types: dict, max_workers: int, idle_minutes: float
) -> dict:
    """Every top-level field filled: the wheel lacks the fake provider's defaults file."""
    return {
        "cluster_name": "dtgan-fake",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
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
            "ray.head.default": {"resources": head_resources, "node_config": {}, "max_workers": 0},
            **worker_types,
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


@dataclass
class FakeCluster:
    address: str  # the GCS address (ip:port), what `--address` and $RAY_ADDRESS take
    env: dict[str, str]  # the environment of the head; clients need its token settings
    tmp: Path  # the cluster's private temp dir (session dirs, logs)
    head_pid: int

    def worker_raylets(self) -> list[int]:
        """PIDs of the fake worker nodes' raylets (the head's carries ``--head``)."""
        return [
            pid
            for pid, cmdline in _processes(str(self.tmp))
            if cmdline.split(" ", 1)[0].endswith("/raylet") and " --head" not in cmdline
        ]

    def monitor_log(self) -> str:
        logs = sorted(self.tmp.glob("session_*/logs/monitor.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)


@contextmanager
def fake_cluster(
    head_resources: dict[str, float],
    worker_types: dict[str, dict],
    *,
    max_workers: int = 2,
    idle_minutes: float = 0.1,
    extra_env: dict[str, str] | None = None,
) -> Iterator[FakeCluster]:
    """A private head with the fake autoscaler; always stopped (with its fake nodes) afterwards."""
    import ray.util

    tmp = Path(tempfile.mkdtemp(prefix="dtgan-ray-", dir="/tmp"))  # short: Unix socket paths <= 107 chars
    gcs_port, client_port, agent_port, metrics_port = free_ports(4)
    ip = ray.util.get_node_ip_address()
    config_path = tmp / "autoscaling.yaml"
    config_path.write_text(
        yaml.safe_dump(
            autoscaling_config(f"{ip}:{gcs_port}", head_resources, worker_types, max_workers, idle_minutes)
        )
    )
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
        **(extra_env or {}),
    }
    head_cpus = head_resources.get("CPU")
    custom = {k: v for k, v in head_resources.items() if k not in ("CPU", "GPU")}
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
            *([f"--num-cpus={int(head_cpus)}"] if head_cpus is not None else []),
            *([f"--resources={json.dumps(custom)}"] if custom else []),
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
        yield FakeCluster(f"{ip}:{gcs_port}", env, tmp, head.pid)
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
        kill_leftover_processes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def _port_open(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def _processes(needle: str) -> list[tuple[int, str]]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and int(proc.name) != os.getpid():
            found.append((int(proc.name), cmdline))
    return found


def kill_leftover_processes(tmp: Path) -> None:
    """Fake worker raylets are our children's children; end those whose command line names our temp dir."""
    for pid, _ in _processes(str(tmp)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
