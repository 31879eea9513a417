"""Vocab, DefectImageDataset, the StarGAN v2 transform, balanced rank-sharded loaders and exact resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from dtgan.config.data import DataConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.loaders import (
    InfiniteBatches,
    ReferencePairs,
    class_weights,
    make_reference_loader,
    make_source_loader,
)
from dtgan.data.synth import synthesize_benchmark
from dtgan.data.transforms import from_uint8, stargan_transform, to_uint8
from dtgan.data.vocab import NORMAL_INDEX, Vocab
from dtgan.errors import DataError

SIZE = 32


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("loaders") / "benchmark.parquet")
    synthesize_benchmark(out, size=SIZE, scale=0.05, seed=1)
    return out


@pytest.fixture(scope="module")
def dataset(path) -> DefectImageDataset:
    return DefectImageDataset(path, img_size=SIZE, transform=stargan_transform(DataConfig(), SIZE))


def test_vocab_puts_normal_first_and_sorts_the_rest():
    vocab = Vocab.from_labels(["c", "a"], ["spot", "normal", "scratch"])
    assert vocab.defects == ("normal", "scratch", "spot") and vocab.products == ("a", "c")
    assert vocab.defect_index("normal") == NORMAL_INDEX == 0 and vocab.product_index("c") == 1
    with pytest.raises(DataError, match="unknown defect 'dent'"):
        vocab.defect_index("dent")
    with pytest.raises(DataError, match="must start with 'normal'"):
        Vocab(("a",), ("scratch", "normal"))


def test_dataset_decodes_rows_once_with_labels_masks_and_clean(dataset):
    n = len(dataset)
    assert dataset.images_uint8.shape == (n, 3, SIZE, SIZE) and dataset.images_uint8.dtype == torch.uint8
    # gray replicated (docs/model.md#a20)
    assert torch.equal(dataset.images_uint8[:, 0], dataset.images_uint8[:, 2])
    assert dataset.masks_uint8.shape == (n, 1, SIZE, SIZE)
    defective = dataset.y != NORMAL_INDEX
    assert torch.equal(dataset.has_clean, defective)  # clean backgrounds exist exactly for defect rows
    assert (dataset.masks_uint8[~defective] == 0).all() and (dataset.masks_uint8[defective] > 0).flatten(
        1
    ).any(1).all()
    x, y, p = dataset[0]
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert (y, p) == (int(dataset.y[0]), int(dataset.p[0]))


def test_dataset_selects_splits_products_and_defects_and_reads_uris(path):
    held_out = DefectImageDataset(
        f"file://{Path(path).resolve()}",
        splits=("val", "test"),
        img_size=SIZE,
        products=["cast"],
        defects=["spot"],
    )
    assert len(held_out) == 10 and set(held_out.p.tolist()) == {held_out.vocab.product_index("cast")}
    resized = DefectImageDataset(path, splits=("val",), img_size=16)
    assert resized.images_uint8.shape[-2:] == (16, 16) and resized.masks_uint8.shape[-2:] == (16, 16)
    with pytest.raises(DataError, match="unknown split"):
        DefectImageDataset(path, splits=("train",))
    with pytest.raises(DataError, match="unknown product 'marble'"):
        DefectImageDataset(path, products=["marble"])
    with pytest.raises(DataError, match="no rows"):  # the unseen cell has no GAN-training images
        DefectImageDataset(path, products=["woven"], defects=["spot"])


def test_transform_is_a_function_of_its_generator_and_uint8_round_trips(dataset):
    transform = stargan_transform(DataConfig(random_resized_crop_prob=1.0), SIZE)
    image = dataset.images_uint8[0]
    first = transform(image, torch.Generator().manual_seed(5))
    assert torch.equal(first, transform(image, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, transform(image, torch.Generator().manual_seed(6)))
    u = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(u)), u) and from_uint8(u).min() == -1 and from_uint8(u).max() == 1
    plain = stargan_transform(DataConfig(random_resized_crop_prob=0.0, hflip=False), SIZE)
    assert torch.equal(to_uint8(plain(image, None)), image)


def _label_counts(loader, batches: int, key) -> Counter:
    iterator, counts = InfiniteBatches(loader), Counter()
    for _ in range(batches):
        _, y, p = next(iterator)
        counts.update(key(y, p))
    return counts


def test_source_loader_balances_defects_and_optionally_product_defect_cells(dataset):
    raw = Counter(dataset.y.tolist())
    assert raw[0] > 2 * raw[1]  # the data itself is far from balanced
    counts = _label_counts(
        make_source_loader(dataset, DataConfig(), 16, seed=0), 150, lambda y, p: y.tolist()
    )
    assert all(abs(counts[d] / 2400 - 1 / 3) < 0.04 for d in range(3)), counts
    cells = _label_counts(
        make_source_loader(dataset, DataConfig(balance="product_defect"), 16, seed=0),
        150,
        lambda y, p: zip(p.tolist(), y.tolist()),
    )
    assert len(cells) == 8  # 3 x 3 cells minus the unseen one, each ~1/8 of the draws
    assert all(abs(n / 2400 - 1 / 8) < 0.03 for n in cells.values()), cells


def test_ranks_take_disjoint_shares_of_one_seeded_draw(dataset):
    global_draw = make_source_loader(dataset, DataConfig(), 4, seed=3).batch_sampler.draw(0)
    shares = [
        make_source_loader(dataset, DataConfig(), 4, seed=3, rank=r, world_size=2).batch_sampler.draw(0)
        for r in range(2)
    ]
    half = len(dataset) // 2
    for rank, (indices, seeds) in enumerate(shares):
        assert len(indices) == half
        assert torch.equal(indices, global_draw[0][rank::2][:half]) and torch.equal(
            seeds, global_draw[1][rank::2][:half]
        )
    other_epoch = make_source_loader(dataset, DataConfig(), 4, seed=3).batch_sampler.draw(1)
    assert not torch.equal(other_epoch[0], global_draw[0])


def test_reference_pairs_share_a_domain_and_are_fixed_by_the_seed(dataset):
    pairs = ReferencePairs(dataset, seed=2)
    assert torch.equal(dataset.y[pairs.partner], dataset.y)
    assert torch.equal(pairs.partner, ReferencePairs(dataset, seed=2).partner)
    assert not torch.equal(pairs.partner, ReferencePairs(dataset, seed=3).partner)
    x_ref, x_ref2, y_trg = next(iter(make_reference_loader(dataset, DataConfig(), 8, seed=2)))
    assert x_ref.shape == x_ref2.shape == (8, 3, SIZE, SIZE) and y_trg.dtype == torch.long


def test_resume_from_state_dict_is_bitwise_identical_across_epoch_boundaries(dataset):
    loader = make_reference_loader(dataset, DataConfig(), 32, seed=4)
    per_epoch = len(loader)
    iterator = InfiniteBatches(loader)
    for _ in range(per_epoch - 2):
        next(iterator)
    state = iterator.state_dict()
    expected = [next(iterator) for _ in range(5)]  # crosses into the next epoch
    assert iterator.state_dict() == {"epoch": 1, "batch": 3}
    resumed = InfiniteBatches(make_reference_loader(dataset, DataConfig(), 32, seed=4))
    resumed.load_state_dict(state)
    for want, got in zip(expected, (next(resumed) for _ in range(5))):
        assert all(torch.equal(a, b) for a, b in zip(want, got))


def test_loader_workers_give_the_same_batches(dataset):
    batches = [
        next(iter(make_source_loader(dataset, DataConfig(loader_workers=w), 8, seed=6))) for w in (0, 2)
    ]
    assert all(torch.equal(a, b) for a, b in zip(*batches))


def test_class_weights_are_inverse_class_counts(dataset):
    weights = class_weights(dataset, "defect")
    for domain in range(3):
        chosen = dataset.y == domain
        assert torch.allclose(
            weights[chosen], torch.full((int(chosen.sum()),), 1 / int(chosen.sum()), dtype=torch.double)
        )
