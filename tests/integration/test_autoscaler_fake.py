"""Ray's autoscaler adds a GPU worker node when a task needs a GPU and removes it once idle.

Uses Ray's fake multi-node provider (`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config ...`):
worker "nodes" are extra raylets on this machine, launched and terminated by the real autoscaler.
The node types mirror ray_cluster.yaml: a head that offers TRAIN_DRIVER and no CPU for training, and a
GPU worker type that scales from zero.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_cluster import fake_cluster, shipped_head_resources

pytestmark = [pytest.mark.slow, pytest.mark.ray]

DRIVER_TIMEOUT_S = 150  # the driver itself bounds scale-up and scale-down by 60 s each
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


@pytest.fixture
def fake_autoscaling_head():
    """The head of ray_cluster.yaml (no CPU, the trial-driver slots) and one 1-GPU worker type from zero."""
    gpu_1x = {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 2}
    with fake_cluster(
        shipped_head_resources(), {"gpu_1x": gpu_1x}, idle_minutes=IDLE_TIMEOUT_MINUTES
    ) as cluster:
        yield cluster.address, cluster.env, cluster.tmp


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
