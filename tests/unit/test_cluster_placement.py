"""Every shipped study preset's trial fits a node of the shipped clusters (ray_cluster.yaml and KubeRay).

One Tune trial is one placement bundle: all its resources must fit on one node. The head of both clusters
offers only the trial-driver slots (no CPU, no GPU), the workers CPUs and GPUs, so an in-process trial must ask
for CPU/GPU only and a multi-worker trial's driver for the slot only. The fake-cluster study
(tests/integration/test_cluster_study.py) runs this for real; this test checks every preset in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dtgan.config.loader import load_config
from dtgan.search.ray_tune import trial_resources

REPO = Path(__file__).resolve().parents[2]
STUDY_PRESETS = ("smoke", "demo", "search_smoke", "sdi", "mvtec_textures", "mvtec_carpet", "paper")


def launcher_nodes() -> dict[str, dict[str, float]]:
    config = yaml.safe_load((REPO / "ray_cluster.yaml").read_text())
    return {name: dict(spec["resources"]) for name, spec in config["available_node_types"].items()}


def _quantity(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def kuberay_nodes() -> dict[str, dict[str, float]]:
    """Ray's resources per KubeRay group: rayStartParams, else the container's limits (what Ray detects)."""
    docs = [d for d in yaml.safe_load_all((REPO / "cluster/kuberay/raycluster.yaml").read_text()) if d]
    spec = next(d for d in docs if d.get("kind") == "RayCluster")["spec"]
    groups = {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}
    nodes = {}
    for name, group in groups.items():
        params = group.get("rayStartParams") or {}
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        resources = {"CPU": _quantity(params.get("num-cpus", limits["cpu"]))}
        if "nvidia.com/gpu" in limits:
            resources["GPU"] = float(limits["nvidia.com/gpu"])
        if "resources" in params:
            resources.update(yaml.safe_load(yaml.safe_load(params["resources"])))
        nodes[name] = resources
    return nodes


def _fits(bundle: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(k, 0.0) >= v for k, v in bundle.items())


@pytest.mark.parametrize("cluster", ["ray_cluster.yaml", "kuberay"])
@pytest.mark.parametrize("preset", STUDY_PRESETS)
@pytest.mark.parametrize("workers", [1, 4])
def test_every_preset_trial_fits_a_node_of_the_shipped_clusters(cluster, preset, workers):
    nodes = launcher_nodes() if cluster == "ray_cluster.yaml" else kuberay_nodes()
    config = load_config(preset, [f"distributed.workers={workers}", "distributed.use_gpu=true"])
    bundle = trial_resources(config)
    fitting = [name for name, node in nodes.items() if _fits(bundle, node)]
    assert fitting, f"{preset}: a trial asks {bundle}, no node type of {cluster} holds it: {nodes}"
    if workers == 1:  # the trial trains itself: never on the head, which offers no CPU
        assert all(nodes[name].get("CPU", 0) > 0 for name in fitting)
        assert "TRAIN_DRIVER" not in bundle
    else:  # only the driver slot; the Ray Train workers ask for a GPU each
        assert bundle == {"TRAIN_DRIVER": 1.0}
        worker = {"CPU": config.distributed.cpus_per_worker, "GPU": 1.0}
        assert any(_fits(worker, node) for node in nodes.values())


def test_the_heads_offer_the_driver_slots_and_no_cpu():
    for nodes, head in ((launcher_nodes(), "ray.head.default"), (kuberay_nodes(), "head")):
        assert nodes[head]["CPU"] == 0 and nodes[head]["TRAIN_DRIVER"] >= 1 and "GPU" not in nodes[head]
