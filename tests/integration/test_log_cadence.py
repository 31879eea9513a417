"""The loop's log cadence: ``train.log_every_steps`` "auto" is a per-device default (a CPU cadence on a CPU, a
longer one on a GPU), an explicit count is kept; the loop reports at exactly those steps (and the last)."""

import pytest
import torch

from dtgan.config import load_config
from dtgan.config.train import TrainConfig
from dtgan.data.synth import synthesize_benchmark
from dtgan.errors import ConfigError
from dtgan.training.environment import Environment
from dtgan.training.loop import (
    AUTO_LOG_EVERY_STEPS,
    AUTO_LOG_EVERY_STEPS_ACCELERATOR,
    log_interval,
    train,
)
from dtgan.training.reporter import Reporter


class _Steps(Reporter):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def report(self, step, metrics, checkpoint_path=None) -> None:
        self.steps.append(step)


def test_auto_log_cadence_is_per_device_and_an_explicit_count_is_kept():
    auto = TrainConfig()
    assert auto.log_every_steps == "auto"
    assert log_interval(auto, torch.device("cpu")) == AUTO_LOG_EVERY_STEPS["cpu"] == 10
    assert log_interval(auto, torch.device("cuda")) == AUTO_LOG_EVERY_STEPS_ACCELERATOR == 100
    explicit = TrainConfig(log_every_steps=7)
    assert log_interval(explicit, torch.device("cpu")) == log_interval(explicit, torch.device("cuda")) == 7
    assert load_config("paper").train.log_every_steps == "auto"
    assert load_config("cpu32", ["train.log_every_steps=3"]).train.log_every_steps == 3


@pytest.mark.parametrize("bad", ["0", "-5", "often"])
def test_a_bad_log_cadence_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="log_every_steps"):
        load_config("tiny", [f"train.log_every_steps={bad}"])


@pytest.mark.parametrize(("cadence", "expected"), [("auto", [10, 12]), ("5", [5, 10, 12])])
def test_the_loop_reports_at_the_cadence_and_the_last_step(tmp_path, cadence, expected):
    data = tmp_path / "benchmark.parquet"
    synthesize_benchmark(str(data), size=32, scale=0.02, seed=0)
    config = load_config(
        "smoke",
        [
            f"data.path={data}",
            f"train.out_dir={tmp_path / 'runs'}",
            "train.total_steps=12",
            "train.batch_size=2",
            "train.sample_every_steps=100",
            "train.checkpoint_every_steps=100",
            f"train.log_every_steps={cadence}",
            "model.ablation=a",
        ],
    )
    reporter = _Steps()
    train(config, reporter=reporter, env=Environment(device=torch.device("cpu")))
    assert reporter.steps == expected
