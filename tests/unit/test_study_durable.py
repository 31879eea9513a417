"""A study started in Ray's temporary working dir keeps its results elsewhere and finds its embedded data."""

from __future__ import annotations

import logging

import pytest

from dtgan.config import load_config
from dtgan.data.parquet_io import read_table
from dtgan.errors import DataError
from dtgan.search.driver import preflight_study
from dtgan.search.durable import ray_working_dir


@pytest.fixture()
def job_dir(tmp_path, monkeypatch):
    """A folder shaped like the one `ray job submit --working-dir .` unpacks the checkout into, as the cwd."""
    folder = tmp_path / "session_x" / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123abcd"
    (folder / "experiments").mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("DTGAN_HOME", str(tmp_path / "home"))
    for name in ("MLFLOW_TRACKING_URI", "DTGAN_STORAGE_PATH"):
        monkeypatch.delenv(name, raising=False)
    return folder


def test_ray_working_dir_is_recognised_only_inside_a_ray_package(job_dir, tmp_path):
    assert ray_working_dir(job_dir / "a" / "b") == job_dir.resolve()
    assert ray_working_dir(tmp_path) is None


def test_results_move_out_of_the_job_dir_and_the_missing_benchmark_is_synthesised_there(
    job_dir, tmp_path, caplog
):
    home = (tmp_path / "home").resolve()
    with caplog.at_level(logging.WARNING):
        config = preflight_study(load_config("smoke"), "ablation", False)
    assert config.study.storage_path == str(home / "ray_results")
    assert config.train.out_dir == str(home / "runs")
    assert config.tracking.tracking_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert config.tracking.artifact_root == str(home / "mlartifacts")
    assert config.data.path == str(home / "ray_results" / "data" / "benchmark.parquet")
    table, vocab = read_table(config.data.path, columns=["split"])
    assert table.num_rows > 1000 and "normal" in vocab.defects
    assert any("deleted when the job ends" in r.message and str(home) in r.message for r in caplog.records)
    assert not any(job_dir.rglob("*.db")) and not (job_dir / "ray_results").exists()


def test_another_missing_data_set_in_the_job_dir_says_why(job_dir):
    with pytest.raises(
        DataError, match="no such data set in the job's working dir .*leaves out what git ignores"
    ):
        preflight_study(load_config("smoke", ["data.path=data/mine.parquet"]), "ablation", False)


def test_a_local_run_keeps_its_paths_and_synthesises_the_benchmark_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DTGAN_STORAGE_PATH", raising=False)
    config = preflight_study(load_config("smoke"), "ablation", False)
    assert config.data.path == str(tmp_path.resolve() / "data" / "synthetic" / "benchmark.parquet")
    assert config.study.storage_path == str(tmp_path.resolve() / "ray_results")
    assert config.tracking.tracking_uri is None  # resolved later against the cwd, as before
