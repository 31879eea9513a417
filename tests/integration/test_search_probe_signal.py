"""The downstream_probe early-stopping signal is the downstream study's mix arm on the checkpoint, read on the
validation split: the same classifier, the same synthetic set, the same seed as `run_study` gives for that arm."""

from __future__ import annotations

import pytest
from downstream_testdata import tiny_benchmark, tiny_checkpoint

from dtgan.config import load_config
from dtgan.downstream.prepare import prepare_study_data
from dtgan.downstream.study import run_study
from dtgan.search.intermediate import IntermediateDownstreamProbe, intermediate_signal
from dtgan.training.checkpoint import load_inference_nets

pytestmark = pytest.mark.slow

TINY = [
    "downstream.backbone=resnet10t",
    "downstream.weights=scratch",
    "downstream.img_size=32",
    "downstream.epochs=1",
    "downstream.batch_size=8",
    "downstream.normal_images_per_product=[10,20]",  # the probe takes the first size
    "downstream.synthesis_sources_per_product=10",
    "downstream.arms=[trad_aug,mix]",  # the probe trains the mix arm alone
    "study.intermediate_signal=downstream_probe",
]


def test_the_probe_is_the_mix_arms_validation_error_of_the_downstream_study(tmp_path):
    data = tiny_benchmark(tmp_path)
    checkpoint = tiny_checkpoint(tmp_path, data)
    config = load_config("smoke", [f"data.path={data}", *TINY, "study.intermediate_probe_seeds=2"])
    probe = intermediate_signal(config, images_per_cell=4)
    assert isinstance(probe, IntermediateDownstreamProbe)
    value = probe(str(checkpoint))

    cfg = config.downstream.model_copy(
        update={"arms": ("mix",), "num_seeds": 2, "normal_images_per_product": (10,)}
    )
    nets = load_inference_nets(str(checkpoint))
    study = prepare_study_data(
        cfg, str(data), nets=nets, checkpoint=str(checkpoint), crop_paste_cfg=config.crop_paste
    )
    payload = run_study(cfg, study.save(tmp_path / "study_data.pt"))
    (row,) = payload["rows"]
    assert row["arm"] == "mix" and row["seeds"] == [cfg.seed, cfg.seed + 1]
    assert value == pytest.approx(row["val_error_pct_mean"])
    assert 0.0 <= value <= 100.0
