"""Study data from a real Parquet data set and a real checkpoint: which normals do what, synthetic sets."""

import pytest
import torch
from downstream_testdata import tiny_benchmark, tiny_checkpoint

from dtgan.config.downstream import DownstreamConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.downstream.arms import Cell, build_training_set
from dtgan.downstream.prepare import prepare_study_data
from dtgan.errors import ConfigError, DataError
from dtgan.training.checkpoint import load_inference_nets

CFG = dict(
    backbone="resnet10t", img_size=32, normal_images_per_product=(20, 40), synthesis_sources_per_product=10
)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    data_path = tiny_benchmark(folder)
    return data_path, tiny_checkpoint(folder, data_path)


def test_sources_classifier_normals_val_and_test_are_disjoint(bench):
    data_path, _ = bench
    data = prepare_study_data(DownstreamConfig(arms=("no_aug",), **CFG), str(data_path))
    holdout = DefectImageDataset(str(data_path), splits=("gan_holdout",), img_size=32, defects=("normal",))
    sources = {i for ids in data.meta["synthesis_source_ids"].values() for i in ids}
    assert len(sources) == 2 * 10 and sources <= set(holdout.ids)
    # per product: 8 gan_train + 55 gan_holdout normals, 10 of them reserved as sources
    assert torch.bincount(data.train_normal.p).tolist() == [53, 53]
    as_bytes = lambda split: {bytes(img.numpy()) for img in split.images}  # noqa: E731
    source_images = {
        bytes(img[:1].numpy()) for img, i in zip(holdout.images_uint8, holdout.ids) if i in sources
    }
    assert not source_images & as_bytes(data.train_normal)
    assert not as_bytes(data.train_normal) & (as_bytes(data.val) | as_bytes(data.test))
    assert len(data.val) == 2 * 3 * 3 and len(data.test) == 2 * 3 * 7
    assert data.train_normal.images.shape[1:] == (1, 32, 32)


def test_limit_defects_per_type_builds_the_data_limited_subset(bench):
    data_path, _ = bench
    cfg = DownstreamConfig(arms=("no_aug",), limit_defects_per_type={"brushed": 2}, **CFG)
    data = prepare_study_data(cfg, str(data_path))
    brushed = data.train_defect.y[data.train_defect.p == 0]
    assert torch.bincount(brushed, minlength=3).tolist() == [0, 2, 2]  # from 4 scratches and 4 spots
    assert int((data.train_defect.p == 1).sum()) == 4  # 'cast' keeps its 4 scratches (and has no spots)
    with pytest.raises(ConfigError, match="limit_defects_per_type: unknown product 'A'"):
        prepare_study_data(
            DownstreamConfig(arms=("no_aug",), limit_defects_per_type={"A": 2}, **CFG), str(data_path)
        )


def test_synthetic_sets_fill_the_deficits_from_the_checkpoint(bench):
    data_path, checkpoint = bench
    cfg = DownstreamConfig(arms=("trad_aug", "mix", "reference"), defect_sources=("all", "brushed"), **CFG)
    data = prepare_study_data(
        cfg, str(data_path), nets=load_inference_nets(checkpoint), checkpoint=str(checkpoint)
    )
    # size 40, 2 products: 80 normals; 8 real scratches, 4 real spots -> 72 + 76 synthetic, 36/38 per product
    assert data.meta["synthetic_counts"]["reference/brushed/cast/spot"] == 38
    assert data.meta["synthetic_counts"]["latent/all/brushed/scratch"] == 18  # mix: half of 36
    assert all(v.dtype == torch.uint8 and v.shape[1:] == (1, 32, 32) for v in data.synthetic.values())
    for arm in ("mix", "reference"):
        ts = build_training_set(data, Cell(arm, 40, defect_source="brushed"), seed=0)
        assert ts.class_counts(data.defects) == {"normal": 80, "scratch": 80, "spot": 80}
        assert ts.num_synthetic == 72 + 76


def test_a_size_beyond_the_available_normals_fails_before_training(bench):
    data_path, _ = bench
    cfg = DownstreamConfig(arms=("no_aug",), **{**CFG, "normal_images_per_product": (54,)})
    with pytest.raises(DataError, match="53 classifier normals.*normal_images_per_product=54"):
        prepare_study_data(cfg, str(data_path))


def test_crop_paste_sets_need_no_checkpoint_and_keep_each_source_outside_the_paste(bench):
    data_path, _ = bench
    cfg = DownstreamConfig(**{**CFG, "arms": ("crop_paste",), "normal_images_per_product": (20,)})
    data = prepare_study_data(cfg, str(data_path))
    # size 20, 2 products: 40 normals; 8 real scratches, 4 real spots -> 32 + 36 pasted, 16/18 per product
    assert data.meta["synthetic_counts"] == {
        "crop_paste/all/brushed/scratch": 16,
        "crop_paste/all/brushed/spot": 18,
        "crop_paste/all/cast/scratch": 16,
        "crop_paste/all/cast/spot": 18,  # 'cast' has no real spots: pasted from 'brushed'
    }
    ts = build_training_set(data, Cell("crop_paste", 20), seed=0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 40, "spot": 40} and ts.augment
    holdout = DefectImageDataset(str(data_path), splits=("gan_holdout",), img_size=32, defects=("normal",))
    first = data.meta["synthesis_source_ids"]["brushed"][0]
    source = holdout.images_uint8[holdout.ids.index(first), :1]
    pasted = data.synthetic["crop_paste/all/brushed/scratch"][0]
    changed = (pasted != source).float().mean()
    assert 0 < changed < 0.5  # one defect pasted, the rest of the source untouched


def test_auto_sources_follow_the_largest_synthetic_set_and_say_when_the_data_cannot_supply_them(bench):
    data_path, _ = bench
    base = {**CFG, "arms": ("crop_paste",), "synthesis_sources_per_product": "auto"}
    small = prepare_study_data(
        DownstreamConfig(**{**base, "normal_images_per_product": (20,)}), str(data_path)
    )
    assert {p: len(ids) for p, ids in small.meta["synthesis_source_ids"].items()} == {
        "brushed": 18,
        "cast": 18,
    }
    assert torch.bincount(small.train_normal.p).tolist() == [63 - 18, 63 - 18]
    big = {**base, "normal_images_per_product": (20, 40)}  # 38 sources + 40 normals > the 63 a product has
    with pytest.raises(
        DataError,
        match=r"product 'brushed': the synthetic sets need 38 synthesis sources.*"
        r"synthesis_sources=classifier_normals",
    ):
        prepare_study_data(DownstreamConfig(**big), str(data_path))
    paper = prepare_study_data(
        DownstreamConfig(**{**big, "synthesis_sources": "classifier_normals"}), str(data_path)
    )
    assert torch.bincount(paper.train_normal.p).tolist() == [63, 63]  # nothing reserved
    train_ids = DefectImageDataset(
        str(data_path), splits=("gan_train",), img_size=32, defects=("normal",)
    ).ids
    sources = paper.meta["synthesis_source_ids"]["brushed"]
    assert len(sources) == 38 and set(sources[:4]) <= set(train_ids)  # the training normals, in their order
    # source j of a set is the product's j-th classifier normal: its pixels survive outside the paste
    first_normal = paper.train_normal.images[paper.train_normal.p == 0][0]
    kept = (paper.synthetic["crop_paste/all/brushed/scratch"][0] == first_normal).float().mean()
    assert kept > 0.5


def test_held_out_data_replaces_val_and_test_with_a_larger_independent_set(bench, tmp_path):
    from dtgan.data.synth import synthesize_benchmark

    data_path, _ = bench
    held_out = tmp_path / "held_out.parquet"
    synthesize_benchmark(
        str(held_out), size=32, scale=0.01, seed=1, products=2, threads=1, held_out_per_cell=20
    )
    data = prepare_study_data(
        DownstreamConfig(arms=("no_aug",), held_out_data=str(held_out), **CFG), str(data_path)
    )
    assert len(data.val) == 2 * 3 * 6 and len(data.test) == 2 * 3 * 14  # 20 per cell, 3:7
    assert data.meta["held_out_data"] == str(held_out)
    own = prepare_study_data(DownstreamConfig(arms=("no_aug",), **CFG), str(data_path))
    as_bytes = lambda split: {bytes(img.numpy()) for img in split.images}  # noqa: E731
    assert not as_bytes(data.test) & as_bytes(own.test)  # another seed: other images
    assert torch.equal(data.train_normal.images, own.train_normal.images)  # training data untouched
    other = tmp_path / "three_products.parquet"
    synthesize_benchmark(str(other), size=32, scale=0.01, seed=1, products=3, threads=1)
    with pytest.raises(DataError, match="held_out_data .* differ"):
        prepare_study_data(
            DownstreamConfig(arms=("no_aug",), held_out_data=str(other), **CFG), str(data_path)
        )
