"""Each arm builds the class counts it promises (balanced by oversampling or by synthetic images)."""

import pytest
import torch
from downstream_fixtures import make_study_data

from dtgan.downstream.arms import Cell, build_training_set, synthetic_requirements
from dtgan.errors import DataError

# Real training defects: product A 5 scratches + 3 spots, product B 2 scratches + 7 spots.


@pytest.fixture(scope="module")
def data():
    return make_study_data(normals_per_product=40)


@pytest.mark.parametrize("arm", ["no_aug", "trad_aug"])
def test_real_arms_oversample_every_defect_class_to_the_normal_count(data, arm):
    ts = build_training_set(data, Cell(arm, 20), seed=0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 40, "spot": 40}
    assert ts.num_synthetic == 0
    assert ts.augment == (arm == "trad_aug")
    # 7 real scratches repeated to 40: every one 5 or 6 times
    scratch_rows = ts.index[ts.y[ts.index] == 1]
    repeats = torch.bincount(scratch_rows)[torch.bincount(scratch_rows) > 0]
    assert repeats.numel() == 7 and set(repeats.tolist()) <= {5, 6}


@pytest.mark.parametrize("arm", ["latent", "reference", "mix", "crop_paste"])
def test_synthetic_arms_fill_each_defect_class_with_synthetic_images(data, arm):
    ts = build_training_set(data, Cell(arm, 20), seed=0)
    assert ts.class_counts(data.defects) == {"normal": 40, "scratch": 40, "spot": 40}
    assert ts.num_synthetic == (40 - 7) + (40 - 10)  # nothing oversampled: the index has no repeats
    assert ts.index.unique().numel() == len(ts)
    assert ts.augment  # synthetic arms add traditional augmentation too, as in the paper


def test_mix_takes_half_latent_half_reference(data):
    need = synthetic_requirements(data, [Cell("mix", 20)])
    # scratch deficit 33 split over 2 products (17 + 16), each half latent (rounded up), half reference
    assert need["latent/all/A/scratch"] == 9 and need["reference/all/A/scratch"] == 8
    assert need["latent/all/B/scratch"] == 8 and need["reference/all/B/scratch"] == 8
    assert sum(need.values()) == 33 + 30


def test_single_product_scope_and_cross_domain_source(data):
    cell = Cell("reference", 10, product="B", defect_source="A")
    ts = build_training_set(data, cell, seed=0)
    assert ts.class_counts(data.defects) == {"normal": 10, "scratch": 10, "spot": 10}
    need = synthetic_requirements(data, [cell])
    assert need == {"reference/A/B/scratch": 8, "reference/A/B/spot": 3}  # B has 2 scratches, 7 spots


def test_sizes_are_nested_subsets_of_the_normals(data):
    small = build_training_set(data, Cell("no_aug", 10), seed=0)
    large = build_training_set(data, Cell("no_aug", 20), seed=0)
    normals = lambda ts: {bytes(img.numpy()) for img in ts.images[ts.y == 0]}  # noqa: E731
    assert normals(small) < normals(large)


def test_too_few_normals_names_the_product_and_the_key(data):
    with pytest.raises(DataError, match="product 'A'.*normal_images_per_product=41"):
        build_training_set(data, Cell("no_aug", 41), seed=0)


def test_oversampling_a_missing_class_asks_for_a_synthetic_arm():
    data = make_study_data(real_defects={(0, 1): 5, (0, 2): 3, (1, 1): 2})  # B has no spots
    with pytest.raises(DataError, match="no real 'spot'"):
        build_training_set(data, Cell("trad_aug", 10, product="B"), seed=0)
    ts = build_training_set(data, Cell("latent", 10, product="B"), seed=0)
    assert ts.class_counts(data.defects)["spot"] == 10
