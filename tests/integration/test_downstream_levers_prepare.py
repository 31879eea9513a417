"""The levers on a real Parquet data set and a real checkpoint: the combined arm's sets, the quality filter judged
by the data set's defect classifier (trained here on the real gan_train images only), the synthetic share."""

import pytest
import torch
from downstream_testdata import tiny_benchmark, tiny_checkpoint

from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream.arms import Cell, build_training_set
from dtgan.downstream.prepare import prepare_study_data
from dtgan.downstream.synthetic_filter import load_defect_scorer
from dtgan.training.checkpoint import load_inference_nets

CFG = dict(
    backbone="resnet10t", img_size=32, normal_images_per_product=(20,), synthesis_sources_per_product=10
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("levers")
    data_path = tiny_benchmark(folder)
    cache = folder / "cache"
    overrides = (
        f"evaluation.cache_dir={cache}",
        "evaluation.defect_cnn.epochs=1",
        "evaluation.defect_cnn.min_steps=20",
    )
    checkpoint = tiny_checkpoint(folder, data_path, overrides)
    return str(data_path), checkpoint, cache


def _prepare(bench, **settings):
    data_path, checkpoint, _ = bench
    nets = load_inference_nets(checkpoint)
    cfg = DownstreamConfig(**{**CFG, **settings})
    return prepare_study_data(cfg, data_path, nets=nets, checkpoint=str(checkpoint)), nets


def test_crop_paste_mix_renders_both_halves_and_balances_the_classes(bench):
    data, _ = _prepare(bench, arms=("crop_paste_mix",))
    # size 20, 2 products: 40 normals; 8 real scratches (16 per product), 4 real spots (18 per product)
    counts = data.meta["synthetic_counts"]
    assert counts["latent/all/brushed/scratch"] == 4 and counts["reference/all/brushed/scratch"] == 4
    assert counts["crop_paste/all/brushed/scratch"] == 8
    assert counts["latent/all/cast/spot"] == 5 and counts["reference/all/cast/spot"] == 4
    assert counts["crop_paste/all/cast/spot"] == 9  # 'cast' has no real spot: pasted from 'brushed'
    ts = build_training_set(data, Cell("crop_paste_mix", 20), seed=0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 40, "spot": 40}
    assert ts.num_synthetic == 32 + 36
    # the Crop&Paste half is the first images of the crop_paste arm's own sets
    alone, _ = _prepare(bench, arms=("crop_paste",))
    for key in ("crop_paste/all/brushed/scratch", "crop_paste/all/cast/spot"):
        assert torch.equal(data.synthetic[key], alone.synthetic[key][: counts[key]])


def test_the_filter_keeps_the_candidates_the_defect_classifier_rates_highest(bench):
    data, nets = _prepare(
        bench, arms=("mix",), synthetic_filter="defect_classifier", synthetic_filter_keep=0.5
    )
    plain, _ = _prepare(bench, arms=("mix",))
    assert (
        data.meta["synthetic_counts"] == plain.meta["synthetic_counts"]
    )  # as many images reach the classifier
    record = data.meta["synthetic_filter"]
    assert record["method"] == "defect_classifier" and record["keep"] == 0.5
    assert record["classifier"].startswith("dtgan-defect-cnn@")
    assert list(bench[2].glob("**/*.pt")), "the judge is cached under the run's evaluation.cache_dir"
    scorer = load_defect_scorer(nets, bench[0])
    assert scorer.name == record["classifier"]  # the cached network, not a second one
    for key, stats in record["sets"].items():
        assert stats["candidates"] == 2 * stats["kept"] == 2 * plain.meta["synthetic_counts"][key]
        assert stats["score_mean_kept"] >= stats["score_mean_candidates"]
        defect = key.split("/")[3]
        kept = scorer(data.synthetic[key], data.defects.index(defect), defect)
        assert float(kept.mean()) == pytest.approx(stats["score_mean_kept"], abs=1e-5)
    # the classifier judges 'cast' spots (a cell it never saw) by the spots of 'brushed'
    assert "latent/all/cast/spot" in record["sets"]
    assert not torch.equal(
        data.synthetic["latent/all/brushed/scratch"], plain.synthetic["latent/all/brushed/scratch"]
    )


def test_the_synthetic_share_renders_the_larger_sets(bench):
    data, _ = _prepare(bench, arms=("crop_paste",), synthetic_share=2.0)
    assert data.meta["synthetic_counts"]["crop_paste/all/brushed/scratch"] == 32
    ts = build_training_set(data, Cell("crop_paste", 20), seed=0, share=2.0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 8 + 64, "spot": 4 + 72}
