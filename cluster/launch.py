"""Launch the AWS Ray cluster (ray_cluster.yaml) only with pinned images and the MLflow secret in place.

    python cluster/launch.py secret            # once: ~/.dtgan/mlflow-client.env (0600), MLflow's credentials
    export RAY_IMAGE_DIGEST=sha256:...         # the digests of the images you checked (cluster/README.md)
    export POSTGRES_IMAGE_DIGEST=sha256:... MLFLOW_IMAGE_DIGEST=sha256:...
    python cluster/launch.py check             # (make cluster-check) what `up` checks, nothing started
    python cluster/launch.py up [-- --yes]     # renders ray_cluster.yaml with the digests, then `ray up`
    python cluster/launch.py check --kuberay   # cluster/kuberay/kustomization.yaml names its image by digest

ray_cluster.yaml names its images as ``...@${RAY_IMAGE_DIGEST}``: Ray does not expand variables, so a plain
`ray up ray_cluster.yaml` cannot pull an unpinned tag by accident (the reference is invalid); this script puts
the digests in. It uses only the standard library and PyYAML (installed with the project).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER_YAML = REPO / "ray_cluster.yaml"
KUSTOMIZATION = REPO / "cluster" / "kuberay" / "kustomization.yaml"
# The images the cluster files name, each pinned by the digest in this variable.
DIGEST_VARIABLES = {
    "RAY_IMAGE_DIGEST": "rayproject/ray:2.60.0-py311-gpu",
    "POSTGRES_IMAGE_DIGEST": "postgres:17.6",
    "MLFLOW_IMAGE_DIGEST": "ghcr.io/mlflow/mlflow:v3.17.2",
}
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# MLflow's credentials, shared by the server (its admin user) and every client on the cluster.
SECRET_FILE = Path("~/.dtgan/mlflow-client.env")
SECRET_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
MIN_PASSWORD_CHARS = 12  # MLflow's basic-auth password policy
DEFAULT_USERNAME = "dtgan"


class LaunchError(Exception):
    """A check failed; the message is one line that says what to do."""


def secret_path() -> Path:
    return SECRET_FILE.expanduser()


def read_secret(path: Path | None = None) -> dict[str, str]:
    """The credentials file's KEY=VALUE lines, checked: present, private (0600), both keys set."""
    path = path or secret_path()
    if not path.is_file():
        raise LaunchError(f"{path}: no MLflow credentials; run `python cluster/launch.py secret` first")
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise LaunchError(f"{path}: readable by others; run `chmod 600 {path}`")
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise LaunchError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    for key in SECRET_KEYS:
        if not values.get(key):
            raise LaunchError(
                f"{path}: {key} is missing or empty; delete the file and run `launch.py secret`"
            )
    if len(values["MLFLOW_TRACKING_PASSWORD"]) < MIN_PASSWORD_CHARS:
        raise LaunchError(f"{path}: MLFLOW_TRACKING_PASSWORD needs at least {MIN_PASSWORD_CHARS} characters")
    return values


def write_secret(path: Path | None = None) -> Path:
    """Create the credentials file (0600) with a random password, unless it exists."""
    path = path or secret_path()
    if path.exists():
        read_secret(path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = f"MLFLOW_TRACKING_USERNAME={DEFAULT_USERNAME}\nMLFLOW_TRACKING_PASSWORD={secrets.token_hex(24)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def digests(env: dict[str, str] | None = None) -> dict[str, str]:
    """The image digests from the environment, each a well-formed sha256 digest."""
    env = os.environ if env is None else env
    found = {}
    for name, image in DIGEST_VARIABLES.items():
        value = env.get(name, "")
        if not DIGEST.match(value):
            shown = f"{value!r} is not a digest" if value else "is not set"
            raise LaunchError(
                f"{name} {shown}; set it to the sha256:<64 hex> digest of {image} "
                f"(e.g. `docker buildx imagetools inspect {image}`, cluster/README.md 'Pinned images')"
            )
        found[name] = value
    return found


def render(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` of the digest variables replaced; any other ``${...}`` stays for the node's shell."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def check_rendered(config: dict) -> None:
    """Every image the rendered launcher config names carries a digest."""
    docker = config.get("docker", {})
    images = [docker.get(k) for k in ("image", "head_image", "worker_image") if docker.get(k)]
    for node_type in config.get("available_node_types", {}).values():
        images += [v for k, v in node_type.get("docker", {}).items() if k.endswith("image")]
    for image in images:
        if not re.search(r"@sha256:[0-9a-f]{64}$", image):
            raise LaunchError(f"{CLUSTER_YAML.name}: image {image} is not pinned by digest")


def check_kustomization(path: Path = KUSTOMIZATION) -> None:
    for image in yaml.safe_load(path.read_text()).get("images", []):
        if not DIGEST.match(str(image.get("digest", ""))):
            raise LaunchError(
                f"{path}: image {image.get('name')} has no digest; after `docker push`, run "
                f"`cd {path.parent} && kustomize edit set image {image.get('name')}=<registry>/dtgan@sha256:<digest>`"
            )


def prepare(env: dict[str, str] | None = None) -> str:
    """All checks of `up`; the rendered ray_cluster.yaml."""
    read_secret()
    text = render(CLUSTER_YAML.read_text(), digests(env))
    check_rendered(yaml.safe_load(text))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("secret", help=f"create {SECRET_FILE} (0600) with a random password, unless it exists")
    check = sub.add_parser("check", help="check digests and the secret; start nothing")
    check.add_argument(
        "--kuberay", action="store_true", help="check cluster/kuberay/kustomization.yaml instead"
    )
    up = sub.add_parser("up", help="check, render ray_cluster.yaml with the digests, run `ray up` on it")
    up.add_argument("ray_args", nargs=argparse.REMAINDER, help="passed to `ray up` (after --)")
    args = parser.parse_args(argv)
    try:
        if args.command == "secret":
            print(f"MLflow credentials in {write_secret()} (keep it out of the repository)")
        elif args.command == "check":
            if args.kuberay:
                check_kustomization()
            else:
                prepare()
            print("ok: images pinned by digest" + ("" if args.kuberay else ", MLflow credentials in place"))
        else:
            text = prepare()
            with tempfile.TemporaryDirectory(prefix="dtgan-cluster-") as tmp:
                rendered = Path(tmp) / CLUSTER_YAML.name
                rendered.write_text(text)
                extra = [a for a in args.ray_args if a != "--"]
                return subprocess.call(
                    ["ray", "up", str(rendered), *extra], cwd=REPO
                )  # file_mounts: from REPO
    except LaunchError as exc:
        print(f"launch.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
