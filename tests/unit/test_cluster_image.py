"""The lock file matches what the tests run with, and the container images build from it, pinned, as non-root."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LOCK = CLUSTER / "requirements.lock"
# Distributions the test suite imports; the cluster must run exactly these versions.
TESTED = ["torch", "ray", "mlflow", "optuna", "timm", "torch-fidelity", "pyarrow", "pydantic"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[A-Za-z0-9_.+!\-]+", line), (
                f"not an exact pin: {line}"
            )
            name, version = line.split("==")
            pins[normalise(name)] = version
    return pins


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, args = line.partition(" ")
            out.append((word.upper(), args.strip()))
    return out


@pytest.mark.parametrize("dist", TESTED)
def test_lock_pins_the_installed_version(dist):
    assert lock_pins()[normalise(dist)] == importlib.metadata.version(dist)


def test_lock_covers_every_project_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {normalise(re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0]) for r in requirements}
    assert names - set(lock_pins()) == set()


def test_dockerfile_builds_from_the_pinned_ray_image_and_the_lock():
    instructions = dockerfile_instructions(CLUSTER / "Dockerfile")
    [base] = [args for word, args in instructions if word == "FROM"]
    m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-gpu@\$\{RAY_IMAGE_DIGEST\}", base)
    assert m, f"base image not pinned by digest: {base}"
    [arg] = [args for word, args in instructions if word == "ARG"]
    assert (
        arg.startswith("RAY_IMAGE_DIGEST=") and "sha256:" not in arg
    )  # no digest invented: the user sets it
    assert m.group(1) == lock_pins()["ray"]
    assert (int(m.group(2)), int(m.group(3))) == sys.version_info[:2]  # the Python the lock was made with
    runs = [args for word, args in instructions if word == "RUN"]
    assert any("pip install -c cluster/requirements.lock ." in r for r in runs)
    copied = [args.split()[-2] for word, args in instructions if word == "COPY"]
    for source in copied:
        assert (REPO / source).exists(), source  # build context = repository root
    assert "cluster/requirements.lock" in copied and "platform" in copied


def test_dockerfile_runs_as_non_root_from_before_the_first_install():
    instructions = dockerfile_instructions(CLUSTER / "Dockerfile")
    users = [(i, args) for i, (word, args) in enumerate(instructions) if word == "USER"]
    assert users and users[-1][1] not in ("root", "0")
    first_run = next(i for i, (word, _) in enumerate(instructions) if word == "RUN")
    assert users[0][0] < first_run


def test_build_context_leaves_out_the_venv_data_and_git():
    ignored = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "data", ".git", "mlflow.db", "mlartifacts"} <= set(ignored)


def test_mlflow_server_image_matches_the_locks_mlflow_and_runs_as_non_root():
    instructions = dockerfile_instructions(CLUSTER / "mlflow" / "Dockerfile")
    [base] = [args for word, args in instructions if word == "FROM"]
    assert base == f"ghcr.io/mlflow/mlflow:v{lock_pins()['mlflow']}@${{MLFLOW_IMAGE_DIGEST}}"
    [arg] = [args for word, args in instructions if word == "ARG"]
    assert arg.startswith("MLFLOW_IMAGE_DIGEST=") and "sha256:" not in arg
    assert ("COPY", "basic_auth.ini /home/mlflow/basic_auth.ini") in instructions
    [run] = [args for word, args in instructions if word == "RUN"]
    for package in ("psycopg2-binary==", "boto3==", f"Flask-WTF=={lock_pins()['flask-wtf']}"):
        assert package in run
    assert [args for word, args in instructions if word == "USER"][-1] == "mlflow"


def test_mlflow_compose_keeps_postgres_internal_and_mlflow_off_public_interfaces():
    compose = yaml.safe_load((CLUSTER / "mlflow" / "compose.yaml").read_text())
    postgres, mlflow = compose["services"]["postgres"], compose["services"]["mlflow"]
    assert "ports" not in postgres
    assert re.fullmatch(r"postgres:\d+\.\d+@\$\{POSTGRES_IMAGE_DIGEST:\?[^}]+\}", postgres["image"])
    assert mlflow["build"]["args"]["MLFLOW_IMAGE_DIGEST"].startswith("${MLFLOW_IMAGE_DIGEST:?")
    assert mlflow["ports"] == ["${MLFLOW_BIND_IP:-127.0.0.1}:5000:5000"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith(
        "postgresql+psycopg2://mlflow:${POSTGRES_PASSWORD}@postgres:"
    )
    flags = mlflow["command"]
    assert flags[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in flags
    assert any(f.startswith("--artifacts-destination=${MLFLOW_ARTIFACTS_DESTINATION") for f in flags)
    [allowed] = [
        f.removeprefix("--allowed-hosts=").split(",") for f in flags if f.startswith("--allowed-hosts=")
    ]
    assert "*" not in allowed and "10.*" not in allowed  # narrower than MLflow's default of all private IPs
    assert mlflow["image"] == f"dtgan-mlflow:{lock_pins()['mlflow']}"


def test_mlflow_server_runs_basic_auth_with_every_secret_from_the_environment():
    import configparser

    compose = yaml.safe_load((CLUSTER / "mlflow" / "compose.yaml").read_text())
    mlflow = compose["services"]["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"]
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"].startswith("${MLFLOW_TRACKING_USERNAME:?")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_TRACKING_PASSWORD:?")
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"].startswith("${MLFLOW_FLASK_SERVER_SECRET_KEY:?")
    for key, value in env.items():  # a secret is only ever a reference, never a value in the repository
        if any(word in key for word in ("PASSWORD", "SECRET")):
            assert value.startswith("${") and value.endswith("}"), key
    auth = configparser.ConfigParser()
    auth.read(CLUSTER / "mlflow" / "basic_auth.ini")
    assert "admin_password" not in auth["mlflow"]
    assert auth["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/home/mlflow/basic_auth.ini"
    store = auth["mlflow"]["database_uri"].removeprefix("sqlite:///")
    assert any(store.startswith(v.split(":")[1] + "/") for v in mlflow["volumes"])  # kept on a volume
