"""KID in torch (evaluation/kid.py) equals torch-fidelity's NumPy KID: same subsets (same seeding), same
estimator, within float tolerance, in float32 (the CPU's precision) and float64 (CUDA's)."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from dtgan.evaluation.kid import kid_from_features, kid_subset_indices


def _features(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g) * 2 + shift).relu()  # non-negative, like pooled Inception features


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("d", "subsets", "size", "shift"), [(64, 10, 50, 0.0), (2048, 4, 120, 0.05)])
def test_kid_in_torch_equals_torch_fidelity(dtype, d, subsets, size, shift):
    fake, real = _features(130, d, 1, shift), _features(150, d, 2)
    reference = kid_features_to_metric(
        fake, real, kid_subsets=subsets, kid_subset_size=size, rng_seed=777, verbose=False
    )
    mean, std = kid_from_features(
        fake, real, subsets=subsets, subset_size=size, seed=777, subsets_per_batch=3, dtype=dtype
    )
    assert mean == pytest.approx(reference[KEY_METRIC_KID_MEAN], rel=1e-4, abs=1e-6)
    assert std == pytest.approx(reference[KEY_METRIC_KID_STD], rel=1e-3, abs=1e-6)
    other_seed, _ = kid_from_features(fake, real, subsets=subsets, subset_size=size, seed=778, dtype=dtype)
    assert other_seed != mean  # the seed picks the subsets


def test_subsets_are_drawn_in_torch_fidelitys_order():
    first, second = kid_subset_indices(20, 30, subsets=3, subset_size=5, seed=4)
    rng = np.random.RandomState(4)
    for i in range(3):
        assert (first[i] == rng.choice(20, 5, replace=False)).all()
        assert (second[i] == rng.choice(30, 5, replace=False)).all()


def test_bad_shapes_are_refused_with_one_line_errors():
    with pytest.raises(ValueError, match="one width"):
        kid_from_features(torch.zeros(5, 3), torch.zeros(5, 4), subsets=1, subset_size=2, seed=0)
    with pytest.raises(ValueError, match="subset size 6 exceeds"):
        kid_from_features(torch.zeros(5, 3), torch.zeros(9, 3), subsets=1, subset_size=6, seed=0)
