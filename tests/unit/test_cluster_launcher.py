"""ray_cluster.yaml: valid for Ray 2.60's autoscaler, private by construction, pinned, GPU workers from zero."""

from __future__ import annotations

import copy
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "ray_cluster.yaml"
LOCK = REPO / "cluster" / "requirements.lock"
# Ports that run code or expose data without further checks: Ray dashboard/Jobs API, Ray Client, GCS,
# MLflow. None may be reachable from the internet.
PRIVATE_PORTS = (8265, 10001, 6379, 5000)
WORLD = ("0.0.0.0/0", "::/0")
# GPUs per instance type used below (AWS specs); a worker type must declare exactly these.
GPUS_PER_INSTANCE = {"g5.xlarge": 1, "g5.2xlarge": 1, "g5.12xlarge": 4, "g6.xlarge": 1, "g6.12xlarge": 4}


def lock_versions() -> dict[str, str]:
    """{normalised distribution name: pinned version} from cluster/requirements.lock."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def world_open_private_ports(config: dict) -> list[tuple[int, str]]:
    """(port, cidr) for every security-group rule in the config that opens a private port to everyone."""
    rules = list(config.get("provider", {}).get("security_group", {}).get("IpPermissions", []))
    for node_type in config.get("available_node_types", {}).values():
        for iface in node_type.get("node_config", {}).get("NetworkInterfaces", []):
            rules += iface.get("IpPermissions", [])
    found = []
    for rule in rules:
        cidrs = [r.get("CidrIp") for r in rule.get("IpRanges", [])]
        cidrs += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])]
        all_ports = str(rule.get("IpProtocol", "tcp")) == "-1" or rule.get("FromPort", -1) == -1
        for port in PRIVATE_PORTS:
            covered = all_ports or rule.get("FromPort", 0) <= port <= rule.get(
                "ToPort", rule.get("FromPort", 0)
            )
            found += [(port, c) for c in cidrs if covered and c in WORLD]
    return found


def start_args(command: str) -> list[str]:
    """The arguments of the `ray start` in a (possibly `;`-chained) shell command line."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    words = list(lexer)
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["ray", "start"]:
            rest = words[i + 2 :]
            return rest[: rest.index(";")] if ";" in rest else rest
    raise AssertionError(f"no `ray start` in {command!r}")


@pytest.fixture(scope="module")
def raw() -> dict:
    """The config as cluster/launch.py hands it to `ray up`: the image digests filled in (test values)."""
    from test_cluster_launch_script import TEST_DIGESTS, launch

    return yaml.safe_load(launch.render(CLUSTER_YAML.read_text(), TEST_DIGESTS))


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    """The config as `ray up` sees it: merged with Ray's AWS defaults, then schema-validated."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def test_config_validates_against_rays_autoscaler_schema(prepared):
    assert prepared["head_node_type"] == "ray.head.default"
    assert set(prepared["available_node_types"]) == {
        "ray.head.default",
        "gpu1_spot",
        "gpu1_ondemand",
        "gpu4_spot",
        "gpu4_ondemand",
    }


def test_schema_validation_rejects_a_misspelt_field(raw):
    """The validation above has teeth: a typo in a node type is an error, not a silently ignored key."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu1_spot"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(bad))


def test_no_security_group_rule_opens_ray_or_mlflow_ports_to_the_internet(prepared):
    assert world_open_private_ports(prepared) == []


@pytest.mark.parametrize(
    "rule",
    [
        {"IpProtocol": "tcp", "FromPort": 8265, "ToPort": 8265, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 10001, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
    ],
)
def test_policy_check_flags_a_world_open_rule(raw, rule):
    bad = copy.deepcopy(raw)
    bad["provider"]["security_group"]["IpPermissions"] = [rule]
    assert world_open_private_ports(bad)


def test_dashboard_and_jobs_api_bind_to_loopback_only(prepared):
    """Ray's AWS default starts the head with --dashboard-host=0.0.0.0; ours must not."""
    from ray.scripts.scripts import start

    head_starts = [c for c in prepared["head_start_ray_commands"] if "ray start" in c]
    assert len(head_starts) == 1 and "0.0.0.0" not in head_starts[0]
    args = start_args(head_starts[0])
    # Parsed by Ray's own CLI definition, so a misspelt flag fails here and not on the cloud.
    params = start.make_context("start", args).params
    assert params["head"] is True
    assert params["dashboard_host"] == "127.0.0.1"
    assert params["dashboard_port"] == 8265
    assert params["autoscaling_config"] == "~/ray_bootstrap_config.yaml"
    worker_start = [c for c in prepared["worker_start_ray_commands"] if "ray start" in c][0]
    assert start.make_context("start", start_args(worker_start)).params["address"] == "$RAY_HEAD_IP:6379"


def test_image_is_pinned_to_the_locks_ray_and_this_python(prepared):
    docker = prepared["docker"]
    images = [docker["image"]] + [docker[k] for k in ("head_image", "worker_image") if k in docker]
    for node_type in prepared["available_node_types"].values():
        images += [v for k, v in node_type.get("docker", {}).items() if k.endswith("image")]
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    for image in images:
        m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-(py\d+)-gpu@sha256:[0-9a-f]{64}", image)
        assert m, f"{image} is not pinned to an exact Ray release and a digest"
        assert m.group(1) == lock_versions()["ray"]
        assert m.group(2) == python_tag


def test_head_runs_trial_drivers_and_no_training(prepared):
    head = prepared["available_node_types"]["ray.head.default"]
    assert head["resources"]["CPU"] == 0
    assert head["resources"].get("GPU", 0) == 0
    assert head["resources"]["TRAIN_DRIVER"] >= 1
    assert head["max_workers"] == 0
    assert "InstanceMarketOptions" not in head["node_config"]  # the head is never a spot instance
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))


def test_gpu_worker_types_declare_their_gpus_and_scale_from_zero(prepared):
    workers = {k: v for k, v in prepared["available_node_types"].items() if k != "ray.head.default"}
    gpu_counts = set()
    for name, node_type in workers.items():
        instance = node_type["node_config"]["InstanceType"]
        assert node_type["resources"]["GPU"] == GPUS_PER_INSTANCE[instance], name
        assert node_type["min_workers"] == 0, name
        assert 1 <= node_type["max_workers"] <= prepared["max_workers"], name
        gpu_counts.add(node_type["resources"]["GPU"])
    assert gpu_counts == {1, 4}  # single-GPU trials and 4-GPU DDP trials
    assert 1 <= prepared["max_workers"] <= 16
    assert 1 <= prepared["idle_timeout_minutes"] <= 30


def test_every_gpu_shape_has_spot_first_and_an_on_demand_fallback(prepared):
    types = prepared["available_node_types"]
    for shape in ("gpu1", "gpu4"):
        spot, ondemand = types[f"{shape}_spot"], types[f"{shape}_ondemand"]
        assert spot["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
        assert "InstanceMarketOptions" not in ondemand["node_config"]
        assert spot["resources"] == ondemand["resources"]
        assert spot["priority"] > ondemand["priority"]


def _plan(prepared, bundle, failed_types=()):
    """Node types Ray's autoscaler v2 scheduler launches for one pending bundle."""
    from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig
    from ray.autoscaler.v2.scheduler import ResourceDemandScheduler, SchedulingRequest
    from ray.autoscaler.v2.utils import ResourceRequestUtil
    from ray.core.generated.autoscaler_pb2 import ResourceRequestByCount

    config = AutoscalingConfig(copy.deepcopy(prepared), skip_content_hash=True)
    availability = {t: 0.0 for t in failed_types}  # what the autoscaler records after a failed launch
    request = SchedulingRequest(
        disable_launch_config_check=True,
        node_type_configs=config.get_node_type_configs(),
        max_num_nodes=config.get_max_num_worker_nodes(),
        idle_timeout_s=config.get_idle_timeout_s(),
        resource_requests=[ResourceRequestByCount(request=ResourceRequestUtil.make(bundle), count=1)],
        cloud_resource_availabilities=availability,
        recoverable_resource_availabilities=availability,
    )
    return [
        (launch.instance_type, launch.count)
        for launch in ResourceDemandScheduler().schedule(request).to_launch
    ]


def test_autoscaler_prefers_spot_and_falls_back_to_on_demand_when_spot_launch_failed(prepared):
    assert _plan(prepared, {"GPU": 1, "CPU": 1}) == [("gpu1_spot", 1)]
    assert _plan(prepared, {"GPU": 1, "CPU": 1}, failed_types=["gpu1_spot"]) == [("gpu1_ondemand", 1)]
    assert _plan(prepared, {"GPU": 4}) == [("gpu4_spot", 1)]
    assert _plan(prepared, {"GPU": 4}, failed_types=["gpu4_spot"]) == [("gpu4_ondemand", 1)]


def test_nodes_install_the_project_from_the_lock_file(prepared):
    assert prepared["file_mounts"]["/home/ray/dtgan"] == "."  # the repository root, where `ray up` runs
    assert ".gitignore" in prepared["rsync_filter"]  # no .venv, data or mlflow.db uploaded
    install = "pip install -q -c /home/ray/dtgan/cluster/requirements.lock -e /home/ray/dtgan"
    assert install in prepared["head_setup_commands"]
    assert install in prepared["worker_setup_commands"]
    assert LOCK.is_file() and (REPO / "pyproject.toml").is_file()


def test_jobs_get_mlflow_uri_storage_path_and_token_auth(prepared):
    run_options = " ".join(prepared["docker"]["run_options"])
    assert "--env RAY_AUTH_MODE=token" in run_options
    storage = re.search(r"--env DTGAN_STORAGE_PATH=(\S+)", run_options).group(1)
    assert storage.startswith("s3://")
    assert prepared["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    head_start = " ".join(prepared["head_start_ray_commands"])
    worker_start = " ".join(prepared["worker_start_ray_commands"])
    assert (
        "export MLFLOW_TRACKING_URI=http://$(python -c 'import ray.util; print(ray.util.get_node_ip_address())'):5000"
        in head_start
    )
    assert "export MLFLOW_TRACKING_URI=http://$RAY_HEAD_IP:5000" in worker_start
    # MLflow artifacts and Ray storage live in the same bucket, so one name is changed in one pass.
    init = " ".join(prepared["available_node_types"]["ray.head.default"]["initialization_commands"])
    artifacts = re.search(r"MLFLOW_ARTIFACTS_DESTINATION=(\S+)", init).group(1)
    assert artifacts.split("/")[2] == storage.split("/")[2]


def test_head_starts_mlflow_from_the_mounted_compose_file(prepared):
    """Initialization commands run on the host, where Ray puts docker file mounts under its mount dir."""
    from ray.autoscaler.sdk import get_docker_host_mount_location

    init = " ".join(prepared["available_node_types"]["ray.head.default"]["initialization_commands"])
    compose = re.search(r"-f (\S+compose\.yaml)", init).group(1)
    host_root = get_docker_host_mount_location(prepared["cluster_name"]) + "/home/ray/dtgan/"
    assert compose.startswith(host_root)
    assert (REPO / compose.removeprefix(host_root)).is_file()
    assert "POSTGRES_PASSWORD=%s" in init and "MLFLOW_FLASK_SERVER_SECRET_KEY=%s" in init
    assert (
        '"$(openssl rand -hex 24)" "$(openssl rand -hex 32)"' in init
    )  # generated on the node, never committed
    # The server's admin user is the clients' credentials, from the file mounted on the head's host.
    client_env = re.search(r"--env-file (\S+mlflow-client\.env)", init).group(1)
    mount = get_docker_host_mount_location(prepared["cluster_name"]) + "/home/ray/.dtgan/mlflow-client.env"
    assert client_env == mount and "/home/ray/.dtgan/mlflow-client.env" in prepared["file_mounts"]
    assert re.search(
        r"POSTGRES_IMAGE_DIGEST=sha256:[0-9a-f]{64} MLFLOW_IMAGE_DIGEST=sha256:[0-9a-f]{64}", init
    )


def test_every_ray_process_gets_mlflows_credentials_from_the_mounted_secret(prepared):
    assert prepared["file_mounts"]["/home/ray/.dtgan/mlflow-client.env"] == "~/.dtgan/mlflow-client.env"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        [start] = [c for c in prepared[key] if "ray start" in c]
        # exported before `ray start`, so the raylet and every worker, job and trial inherit them
        assert start.index("set -a; . ~/.dtgan/mlflow-client.env; set +a;") < start.index("ray start")
    assert "MLFLOW_TRACKING_PASSWORD=" not in CLUSTER_YAML.read_text()  # the value is never in the repository
