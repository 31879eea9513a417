"""A study checks its inputs before any side effect: a bad data set or search space, or a cluster without the
trial drivers' resource, exits 2 with one line and leaves no MLflow store, parent run or launch folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from studies_testdata import tiny_benchmark, tiny_study_overrides

from dtgan.config import load_config
from dtgan.errors import ConfigError, DataError
from dtgan.search.runner import run_ablation, run_search

REPO = Path(__file__).resolve().parents[2]


def _nothing_started(folder: Path) -> None:
    assert not (folder / "mlflow.db").exists(), "an MLflow store was created"
    assert not (folder / "mlartifacts").exists()
    assert not (folder / "ray_results").exists() or not any((folder / "ray_results").iterdir()), (
        "a launch folder"
    )


def test_missing_data_is_refused_before_anything_starts(tmp_path):
    config = load_config("smoke", tiny_study_overrides(tmp_path, tmp_path / "missing.parquet"))
    with pytest.raises(DataError, match="missing.parquet: no such data set"):
        run_ablation(config)
    _nothing_started(tmp_path)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("loss.lambda_cyc: {type: loguniform, low: 0, high: 1}\n", "loguniform needs low > 0"),
        ("loss.lambda_cyc: {type: gaussian, low: 0, high: 1}\n", "lambda_cyc"),
        ("loss.lambda_cyc: {type: uniform, low: 0\n", "not valid YAML"),
        (None, "does not exist"),
    ],
)
def test_a_bad_search_space_is_refused_before_anything_starts(tmp_path, space, message):
    data = tiny_benchmark(tmp_path)
    path = tmp_path / "space.yaml"
    if space is not None:
        path.write_text(space)
    config = load_config(
        "smoke", [*tiny_study_overrides(tmp_path, data), f"study.search_space={path}", "study.scheduler=fifo"]
    )
    with pytest.raises(ConfigError, match=message) as err:
        run_search(config)
    assert "\n" not in str(err.value)
    _nothing_started(tmp_path)


def test_resume_without_an_earlier_launch_is_refused_before_anything_starts(tmp_path):
    data = tiny_benchmark(tmp_path)
    with pytest.raises(ConfigError, match="no earlier launch"):
        run_ablation(load_config("smoke", tiny_study_overrides(tmp_path, data)), resume=True)
    _nothing_started(tmp_path)


def test_the_ablation_script_exits_2_with_one_line_on_missing_data(tmp_path):
    overrides = tiny_study_overrides(tmp_path, tmp_path / "missing.parquet")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "ablation.py"),
            "--preset",
            "smoke",
            *[a for o in overrides for a in ("-o", o)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "missing.parquet: no such data set" in done.stderr and "Traceback" not in done.stderr
    _nothing_started(tmp_path)


@pytest.mark.ray
def test_a_cluster_without_the_driver_resource_is_refused_naming_the_flag(tmp_path):
    """Multi-worker trials hold a driver slot (in-process trials hold only CPU/GPU: test_cluster_placement.py)."""
    import ray

    data = tiny_benchmark(tmp_path)
    ray.init(num_cpus=1, include_dashboard=False)  # like `ray start --head` without --resources
    try:
        with pytest.raises(ConfigError, match=r"offers no 'TRAIN_DRIVER' resource.*--resources") as err:
            run_ablation(
                load_config("smoke", [*tiny_study_overrides(tmp_path, data), "distributed.workers=2"])
            )
        assert "\n" not in str(err.value)
    finally:
        ray.shutdown()
    _nothing_started(tmp_path)


@pytest.fixture
def ray_dir():
    path = tempfile.mkdtemp(prefix="ra", dir="/tmp")  # Ray's socket paths must stay < 108 chars
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _augmentation_config(tmp_path, data, *extra):
    return load_config("downstream_smoke", [*tiny_study_overrides(tmp_path, data), *extra])


def test_augmentation_with_a_missing_checkpoint_is_refused_before_anything_starts(tmp_path):
    from dtgan.errors import CheckpointError
    from dtgan.search.augmentation import run_augmentation

    data = tiny_benchmark(tmp_path)
    with pytest.raises(CheckpointError, match="missing.pt: no such checkpoint") as err:
        run_augmentation(_augmentation_config(tmp_path, data), str(tmp_path / "missing.pt"))
    assert "\n" not in str(err.value)
    _nothing_started(tmp_path)


def test_augmentation_with_missing_data_is_refused_before_anything_starts(tmp_path):
    from dtgan.search.augmentation import run_augmentation

    config = _augmentation_config(tmp_path, tmp_path / "missing.parquet", "downstream.arms=[no_aug]")
    with pytest.raises(DataError, match="missing.parquet: no such data set"):
        run_augmentation(config, None)
    _nothing_started(tmp_path)


def test_the_augmentation_script_exits_2_with_one_line_without_a_checkpoint(tmp_path):
    overrides = tiny_study_overrides(tmp_path, tmp_path / "missing.parquet")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "experiments" / "augmentation.py"),
            "--preset",
            "downstream_smoke",
            *[a for o in overrides for a in ("-o", o)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "need --checkpoint CHECKPOINT_OR_RUN" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    _nothing_started(tmp_path)


@pytest.mark.ray
def test_augmentation_on_a_local_ray_without_gpus_is_refused_naming_the_key(tmp_path, ray_dir):
    import ray

    from dtgan.search.augmentation import run_augmentation

    if ray.is_initialized():
        pytest.skip("needs to start its own local Ray")
    data = tiny_benchmark(tmp_path)
    config = _augmentation_config(tmp_path, data, "downstream.arms=[no_aug]", "study.gpus_per_classifier=1")
    with pytest.raises(
        ConfigError, match=r"needs \{'GPU': 1.0\} but the local Ray offers .*gpus_per_classifier=0"
    ):
        run_augmentation(config, None, temp_dir=ray_dir)
    assert not ray.is_initialized()  # the Ray it started is stopped again
    _nothing_started(tmp_path)


@pytest.mark.ray
def test_an_augmentation_that_fails_after_its_launch_ends_the_parent_run_failed(
    tmp_path, monkeypatch, ray_dir
):
    from mlflow.tracking import MlflowClient

    from dtgan.search import augmentation

    def broken(launch, checkpoint):
        raise RuntimeError("injected failure while preparing the study data")

    monkeypatch.setattr(augmentation, "_prepare", broken)
    data = tiny_benchmark(tmp_path)
    config = _augmentation_config(tmp_path, data, "downstream.arms=[no_aug]")
    with pytest.raises(RuntimeError, match="injected failure"):
        augmentation.run_augmentation(config, None, temp_dir=ray_dir)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert runs and {r.info.status for r in runs} == {"FAILED"}


def test_random_bytes_as_inception_weights_are_refused_before_any_trial_trains(tmp_path):
    data = tiny_benchmark(tmp_path)
    weights = tmp_path / "random.pth"
    weights.write_bytes(bytes(range(256)) * 16)
    config = load_config(
        "smoke", [*tiny_study_overrides(tmp_path, data), f"evaluation.inception_weights_path={weights}"]
    )
    with pytest.raises(
        ConfigError, match="random.pth: SHA-256 .* is not that of the Inception weights"
    ) as err:
        run_ablation(config)
    assert "\n" not in str(err.value)
    _nothing_started(tmp_path)


_TOKEN_CHECK = """
import json, sys
from ray._private.authentication.authentication_utils import is_token_auth_enabled  # what Ray itself checks
from dtgan.config.study import StudyConfig
from dtgan.search import ray_tune
ray_tune.start_ray(StudyConfig(local_num_cpus=1), temp_dir=sys.argv[1])
try:
    print(json.dumps({"token": is_token_auth_enabled()}))
finally:
    ray_tune.stop_ray()
"""


@pytest.mark.ray
def test_the_private_local_ray_authenticates_with_a_token_even_when_asked_not_to(tmp_path):
    """Ray's gRPC servers listen on every interface: the study's own local Ray must demand the token. In a
    process of its own: Ray keeps its authentication mode in process-wide state."""
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    env = {**os.environ, "HOME": str(tmp_path), "RAY_AUTH_MODE": "disabled"}  # a user's opt-out
    env.pop("RAY_AUTH_TOKEN", None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TOKEN_CHECK, temp_dir],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"token": True}
    assert (tmp_path / ".ray" / "auth_token").is_file()  # Ray made the token for the new local cluster
    assert "RAY_AUTH_MODE=disabled ignored" in done.stderr
