"""``dtgan data photos``: the real-photo check set from photographs that installed packages ship (no download),
three products, crack/stain with masks, one empty cell, ~380 gan_train images, the same file for the same seed."""

from __future__ import annotations

import pytest
import torch

from dtgan.cli.main import main
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.photos import MISSING, PRODUCTS, photo_path


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("photos") / "photos.parquet"
    assert main(["data", "photos", "--out", str(out), "--size", "32"]) == 0
    return out


def test_every_photograph_ships_with_an_installed_package():
    for product in PRODUCTS:
        assert photo_path(product).is_file()


def test_the_set_has_three_products_masks_and_one_empty_cell(photo_set, capsys):
    train = DefectImageDataset(str(photo_set), splits=("gan_train",), img_size=32)
    assert tuple(train.vocab.products) == ("flag", "foliage", "petals")
    assert tuple(train.vocab.defects) == ("normal", "crack", "stain")
    assert 300 <= len(train.y) <= 400
    counts = {
        (p, d): int(((train.p == i) & (train.y == j)).sum())
        for i, p in enumerate(train.vocab.products)
        for j, d in enumerate(train.vocab.defects)
    }
    assert counts[MISSING] == 0 and all(n > 0 for cell, n in counts.items() if cell != MISSING)
    defects = train.y > 0
    assert bool((train.masks_uint8[defects].flatten(1).amax(1) > 0).all())  # every defect has its mask
    assert bool((train.masks_uint8[~defects] == 0).all())
    held_out = DefectImageDataset(str(photo_set), splits=("val",), img_size=32)
    assert len(held_out.y) > 0


def test_the_same_seed_gives_the_same_images(photo_set, tmp_path):
    again = tmp_path / "again.parquet"
    assert main(["data", "photos", "--out", str(again), "--size", "32"]) == 0
    a = DefectImageDataset(str(photo_set), splits=("gan_train",), img_size=32)
    b = DefectImageDataset(str(again), splits=("gan_train",), img_size=32)
    assert torch.equal(a.images_uint8, b.images_uint8)


def test_a_folder_as_out_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "photos", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and len(err.strip().splitlines()) == 1
