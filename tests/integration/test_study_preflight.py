"""A study checks its inputs before any side effect: a bad data set or search space, or a cluster without the
trial drivers' resource, exits 2 with one line and leaves no MLflow store, parent run or launch folder."""

from __future__ import annotations

import subprocess
import sys
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
    import ray

    data = tiny_benchmark(tmp_path)
    ray.init(num_cpus=1, include_dashboard=False)  # like `ray start --head` without --resources
    try:
        with pytest.raises(ConfigError, match=r"offers no 'TRAIN_DRIVER' resource.*--resources") as err:
            run_ablation(load_config("smoke", tiny_study_overrides(tmp_path, data)))
        assert "\n" not in str(err.value)
    finally:
        ray.shutdown()
    _nothing_started(tmp_path)
