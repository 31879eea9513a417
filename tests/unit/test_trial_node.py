"""What a trial checks and fetches on the node it lands on: a usable GPU when it was given one, the study's
extractor weights and a multi-worker run's checkpoint from the storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dtgan.config.loader import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.errors import ConfigError
from dtgan.evaluation.extractors import pinned_defect_classifier
from dtgan.evaluation.feature_cache import fingerprint_file
from dtgan.search import ray_tune
from dtgan.search.study_extractor import localise_extractor, pin_extractor
from dtgan.training.ray_train import fetch_checkpoint


def test_a_trial_given_a_gpu_without_usable_cuda_stops_with_one_line(monkeypatch):
    monkeypatch.setattr(ray_tune.ray, "get_gpu_ids", lambda: [0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(
        ConfigError, match=r"given GPU\(s\) \[0\].*CUDA is not usable.*CUDA_VISIBLE_DEVICES='0'"
    ) as err:
        ray_tune.check_trial_device(load_config("smoke"))
    assert "\n" not in str(err.value) and "train.device=cpu" in str(err.value)
    ray_tune.check_trial_device(load_config("smoke", ["train.device=cpu"]))  # the user's explicit choice
    monkeypatch.setattr(ray_tune.ray, "get_gpu_ids", lambda: [])
    ray_tune.check_trial_device(load_config("smoke"))  # no GPU given: the CPU is what it was given


def test_the_study_pins_its_extractor_so_no_trial_switches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no Inception weights anywhere
    data = tmp_path / "bench.parquet"
    synthesize_benchmark(str(data), size=32, scale=0.02, seed=0, products=2, threads=1)
    overrides = [
        f"data.path={data}",
        f"study.storage_path={tmp_path / 'ray_results'}",
        f"evaluation.cache_dir={tmp_path / 'cache'}",
        "evaluation.defect_cnn.min_steps=5",
        "evaluation.defect_cnn.epochs=1",
        f"evaluation.pretrained_cnn.cache_dir={tmp_path / 'pretrained'}",
        "evaluation.pretrained_cnn.images_per_class=4",
        "evaluation.pretrained_cnn.epochs=1",
        "evaluation.pretrained_cnn.render_sides=[32]",
    ]
    config = load_config("smoke", overrides)
    assert config.evaluation.feature_extractor == "auto" and config.evaluation.defect_cnn_weights_path is None
    pinned = pin_extractor(config)
    assert (
        pinned.evaluation.feature_extractor == "dtgan-pretrained-cnn"
    )  # a node with Inception cannot switch
    weights = Path(pinned.evaluation.defect_cnn_weights_path)  # trained once, by the driver
    assert weights.is_file() and weights.is_relative_to(tmp_path / "cache")
    pretrained = Path(pinned.evaluation.pretrained_cnn.weights_path)  # pre-trained once, by the driver
    assert pretrained.is_file() and pretrained.is_relative_to(tmp_path / "pretrained")
    again = pin_extractor(config).evaluation
    assert again.defect_cnn_weights_path == str(weights)  # cached, not retrained
    assert again.pretrained_cnn.weights_path == str(pretrained)
    own = load_config("smoke", [*overrides, "evaluation.feature_extractor=dtgan-defect-cnn"])
    assert (
        pin_extractor(own).evaluation.pretrained_cnn.weights_path is None
    )  # asked for the data set's own CNN
    assert localise_extractor(pinned) == pinned  # local storage: every trial reads the driver's file
    assert not (tmp_path / "ray_results").exists()  # pinning starts nothing in the storage
    spec = pinned_defect_classifier(weights)
    assert spec.weights_fingerprint == fingerprint_file(weights)
    (tmp_path / "bad.pt").write_bytes(b"not a network")
    with pytest.raises(
        ConfigError, match=r"defect_cnn_weights_path: .*bad.pt is not dtgan-defect-cnn weights"
    ):
        pinned_defect_classifier(tmp_path / "bad.pt")
    asked = load_config("smoke", [*overrides, "evaluation.feature_extractor=inception-v3-compat"])
    assert pin_extractor(asked).evaluation.feature_extractor == "inception-v3-compat"  # its own error later


def test_a_multi_worker_trial_takes_its_checkpoint_from_ray_trains_storage(tmp_path):
    stored = tmp_path / "storage" / "train-g" / "checkpoint_000001"  # what RayTrainReporter hands Ray
    stored.mkdir(parents=True)
    (stored / "step_00000010.pt").write_bytes(b"ten")
    (stored / "metrics.jsonl").write_text("{}\n")
    run_dir = tmp_path / "scratch" / "g-seed777"
    got = fetch_checkpoint(str(stored), run_dir)
    assert got == run_dir / "checkpoints" / "step_00000010.pt" and got.read_bytes() == b"ten"
    assert fetch_checkpoint(str(tmp_path / "storage" / "empty"), run_dir) is None
    assert not any(Path(run_dir / "checkpoints").glob(".*"))  # no temporaries left
