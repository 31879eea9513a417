"""The one door to training: ``distributed.workers`` means the same for ``dtgan train`` and for a study trial."""

from __future__ import annotations

import pytest

from dtgan.config.loader import load_config
from dtgan.errors import ConfigError
from dtgan.search.ray_tune import trial_resources
from dtgan.training import launch


@pytest.mark.parametrize("workers", [0, 1, 2, 8])
def test_one_rule_decides_where_a_run_trains_and_how_a_trial_is_placed(workers):
    config = load_config("smoke", [f"distributed.workers={workers}"])
    in_process = launch.trains_in_process(config)
    assert in_process is (workers <= 1)
    bundle = trial_resources(
        config
    )  # the trial that trains itself holds the worker's CPU, else a driver slot
    assert ("CPU" in bundle) is in_process and (config.study.driver_resource in bundle) is not in_process


def test_a_checkpoint_file_resumes_only_in_process(monkeypatch, tmp_path):
    def no_ray(*args, **kwargs):
        raise AssertionError("Ray Train must not start")

    monkeypatch.setattr(launch, "fit_distributed", no_ray)
    config = load_config("smoke", ["distributed.workers=2"])
    with pytest.raises(
        ConfigError, match=r"step_00000002.pt: a checkpoint file continues a run in one process"
    ):
        launch.fit(config, resume=tmp_path / "step_00000002.pt")
