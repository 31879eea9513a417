"""KubeRay manifests: parse, autoscale GPU worker groups from zero, keep Ray private, run the ablation study."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"


def documents(name: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]
    assert docs, name
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
    return docs


def one(docs: list[dict], kind: str) -> dict:
    [doc] = [d for d in docs if d["kind"] == kind]
    return doc


@pytest.fixture(scope="module")
def ray_cluster() -> dict:
    return one(documents("raycluster.yaml"), "RayCluster")


@pytest.fixture(scope="module")
def autoscaling(ray_cluster) -> dict:
    """What Ray's KubeRay autoscaler derives from the RayCluster (the namespace comes from kustomization)."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    cr = copy.deepcopy(ray_cluster)
    cr["metadata"]["namespace"] = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())["namespace"]
    return _derive_autoscaling_config_from_ray_cr(cr)


def test_raycluster_turns_the_autoscaler_on(ray_cluster):
    spec = ray_cluster["spec"]
    assert ray_cluster["apiVersion"] == "ray.io/v1"
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert 60 <= spec["autoscalerOptions"]["idleTimeoutSeconds"] <= 1800
    assert spec["rayVersion"] == "2.60.0"


def test_gpu_worker_groups_scale_from_zero_and_request_gpus(ray_cluster):
    groups = {g["groupName"]: g for g in ray_cluster["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"gpu1", "gpu4"}
    for name, gpus in (("gpu1", 1), ("gpu4", 4)):
        group = groups[name]
        assert group["minReplicas"] == 0 and group["replicas"] == 0
        assert group["maxReplicas"] >= 1
        [container] = group["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus


def test_rays_autoscaler_sees_gpu_types_and_a_head_without_training_cpus(autoscaling):
    types = autoscaling["available_node_types"]
    head = types[autoscaling["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert head["resources"]["TRAIN_DRIVER"] == 16
    assert "GPU" not in head["resources"]
    assert types["gpu1"]["resources"]["GPU"] == 1 and types["gpu1"]["min_workers"] == 0
    assert types["gpu4"]["resources"]["GPU"] == 4 and types["gpu4"]["min_workers"] == 0
    assert autoscaling["idle_timeout_minutes"] == 10


def test_ray_is_private_and_token_authenticated(ray_cluster):
    spec = ray_cluster["spec"]
    assert spec["authOptions"]["mode"] == "token"
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"
    policy = one(documents("raycluster.yaml"), "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"ray.io/cluster": ray_cluster["metadata"]["name"]}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = [s for rule in policy["spec"]["ingress"] for s in rule["from"]]
    assert all("ipBlock" not in s for s in sources)  # no CIDR (let alone 0.0.0.0/0) may reach Ray


def test_pods_get_tracking_uri_and_storage_path_from_one_configmap(ray_cluster):
    env = one(documents("raycluster.yaml"), "ConfigMap")
    assert env["data"]["MLFLOW_TRACKING_URI"].startswith("http")
    assert env["data"]["DTGAN_STORAGE_PATH"].startswith("s3://")
    groups = [ray_cluster["spec"]["headGroupSpec"]] + ray_cluster["spec"]["workerGroupSpecs"]
    for group in groups:
        for container in group["template"]["spec"]["containers"]:
            assert {"configMapRef": {"name": env["metadata"]["name"]}} in container["envFrom"]
            assert {"secretRef": {"name": "dtgan-mlflow-auth"}} in container[
                "envFrom"
            ]  # MLflow's credentials
            assert container["image"] == "dtgan"  # replaced by kustomization.yaml


def test_kustomization_pins_the_image_everywhere():
    kustomization = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["raycluster.yaml"]
    [image] = kustomization["images"]
    assert image["name"] == "dtgan"
    assert image["newTag"] not in ("", "latest") and "ray2.60.0" in image["newTag"]


def test_rayjob_runs_the_ablation_study_on_the_cluster(ray_cluster):
    job = one(documents("rayjob.yaml"), "RayJob")
    spec = job["spec"]
    assert spec["clusterSelector"] == {"ray.io/cluster": ray_cluster["metadata"]["name"]}
    assert "python experiments/ablation.py --preset sdi" in spec["entrypoint"]
    assert spec["submissionMode"] == "HTTPMode"  # no submitter pod that the NetworkPolicy would refuse
    assert isinstance(yaml.safe_load(spec["runtimeEnvYAML"]), dict)
