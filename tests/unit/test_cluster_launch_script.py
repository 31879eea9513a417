"""cluster/launch.py: no launch without images pinned by digest and MLflow's credentials; one line, exit 2."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "cluster" / "launch.py"


def load_launch():
    return load_script("cluster/launch.py", "dtgan_cluster_launch")


launch = load_launch()
# Test values of the right shape (hashes of the variable names), not the images' real digests.
TEST_DIGESTS = {
    name: "sha256:" + hashlib.sha256(name.encode()).hexdigest() for name in launch.DIGEST_VARIABLES
}


def _run(tmp_path, *args, digests=TEST_DIGESTS, path_prefix=None):
    env = {k: v for k, v in os.environ.items() if k not in launch.DIGEST_VARIABLES}
    env.update(digests, HOME=str(tmp_path / "home"))
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


def _one_line_error(done, *fragments):
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def _fake_ray(tmp_path) -> Path:
    """A `ray` on PATH that records its arguments and copies the config it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ray"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/ray_args\ncp "$2" {tmp_path}/rendered.yaml\n')
    fake.chmod(0o755)
    return bin_dir


def test_the_committed_config_names_the_ray_image_only_through_the_digest_variable():
    raw = yaml.safe_load((REPO / "ray_cluster.yaml").read_text())
    assert raw["docker"]["image"] == "rayproject/ray:2.60.0-py311-gpu@${RAY_IMAGE_DIGEST}"
    with pytest.raises(launch.LaunchError, match="not pinned by digest"):
        launch.check_rendered(raw)  # as `ray up ray_cluster.yaml` would see it: no pullable digest


def test_up_refuses_a_missing_secret_and_never_calls_ray(tmp_path):
    done = _run(tmp_path, "up", path_prefix=_fake_ray(tmp_path))
    _one_line_error(done, "mlflow-client.env: no MLflow credentials", "launch.py secret")
    assert not (tmp_path / "ray_args").exists()


@pytest.mark.parametrize(
    ("digests", "message"),
    [
        ({k: v for k, v in TEST_DIGESTS.items() if k != "RAY_IMAGE_DIGEST"}, "RAY_IMAGE_DIGEST is not set"),
        ({**TEST_DIGESTS, "POSTGRES_IMAGE_DIGEST": "17.6"}, "POSTGRES_IMAGE_DIGEST '17.6' is not a digest"),
        ({**TEST_DIGESTS, "MLFLOW_IMAGE_DIGEST": "sha256:abc"}, "digest of ghcr.io/mlflow/mlflow:v3.17.2"),
    ],
)
def test_up_refuses_an_image_without_a_digest(tmp_path, digests, message):
    assert _run(tmp_path, "secret").returncode == 0
    done = _run(tmp_path, "up", digests=digests, path_prefix=_fake_ray(tmp_path))
    _one_line_error(done, message)
    assert not (tmp_path / "ray_args").exists()


def test_secret_is_private_and_check_then_up_run_ray_on_the_pinned_config(tmp_path):
    assert _run(tmp_path, "secret").returncode == 0
    secret = tmp_path / "home" / ".dtgan" / "mlflow-client.env"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in secret.read_text().splitlines())
    assert set(values) == {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    assert len(values["MLFLOW_TRACKING_PASSWORD"]) >= 12
    before = secret.read_text()
    assert _run(tmp_path, "secret").returncode == 0 and secret.read_text() == before  # never overwritten
    assert _run(tmp_path, "check").returncode == 0
    done = _run(tmp_path, "up", "--", "--yes", path_prefix=_fake_ray(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ray_args").read_text().split()[::2] == ["up", "--yes"]
    rendered = (tmp_path / "rendered.yaml").read_text()
    assert f"rayproject/ray:2.60.0-py311-gpu@{TEST_DIGESTS['RAY_IMAGE_DIGEST']}" in rendered
    for name, digest in TEST_DIGESTS.items():
        assert "${" + name + "}" not in rendered and digest in rendered
    assert values["MLFLOW_TRACKING_PASSWORD"] not in rendered  # the secret travels as a file mount only


def test_a_secret_readable_by_others_is_refused(tmp_path):
    assert _run(tmp_path, "secret").returncode == 0
    (tmp_path / "home" / ".dtgan" / "mlflow-client.env").chmod(0o644)
    _one_line_error(_run(tmp_path, "check"), "readable by others; run `chmod 600")


def test_kuberay_check_refuses_an_image_without_a_digest(tmp_path):
    _one_line_error(
        _run(tmp_path, "check", "--kuberay"), "image dtgan has no digest", "kustomize edit set image"
    )
    pinned = yaml.safe_load(launch.KUSTOMIZATION.read_text())
    pinned["images"][0]["digest"] = TEST_DIGESTS["RAY_IMAGE_DIGEST"]
    path = tmp_path / "kustomization.yaml"
    path.write_text(yaml.safe_dump(pinned))
    launch.check_kustomization(path)  # passes
