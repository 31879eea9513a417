"""Split assignment as in the paper's Appendix A: per-cell val/test hold-out (3:7), a GAN subset of normal."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dtgan.data.vocab import NORMAL
from dtgan.errors import DataError

VAL_FRACTION = 0.3  # val : test = 3 : 7 of the held-out images of each cell
SDI_HOLDOUT_PER_CELL = 50
SDI_GAN_NORMAL_PER_PRODUCT = 700


@dataclass(frozen=True)
class SplitOptions:
    """Paper Appendix A split sizes and the shuffle seed."""

    holdout_per_cell: int = SDI_HOLDOUT_PER_CELL
    gan_normal_per_product: int = SDI_GAN_NORMAL_PER_PRODUCT
    seed: int = 0


def paper_split_rule(options: SplitOptions) -> str:
    """The Appendix A rule with its numbers, as stored in the file and shown by ``dtgan data describe``."""
    return (
        f"paper (Appendix A): per product x defect cell of n images, min({options.holdout_per_cell}, n // 2) held "
        f"out, 3:7 val:test; defects: the rest gan_train; normal: min({options.gan_normal_per_product}, "
        f"rest // 2) gan_train, the rest gan_holdout; seeded shuffle within each cell (seed {options.seed})"
    )


@dataclass(frozen=True)
class CellSplit:
    """How many images of one (product, defect) cell go to each split, in the order val, test, gan_train,
    gan_holdout."""

    val: int
    test: int
    gan_train: int
    gan_holdout: int = 0

    @property
    def total(self) -> int:
        return self.val + self.test + self.gan_train + self.gan_holdout

    def labels(self) -> list[str]:
        """One split name per image of the cell, in a fixed order (shuffle the images, not this)."""
        return (
            ["val"] * self.val
            + ["test"] * self.test
            + ["gan_train"] * self.gan_train
            + ["gan_holdout"] * self.gan_holdout
        )


def split_held_out(held_out: int) -> tuple[int, int]:
    """(val, test) of a cell's held-out images, 3:7, each at least 1 when held_out >= 2."""
    val = min(max(1, round(VAL_FRACTION * held_out)), held_out - 1)
    return val, held_out - val


def plan_cell(
    product: str, defect: str, count: int, holdout_per_cell: int, gan_normal_per_product: int
) -> CellSplit:
    """Split an imported cell of ``count`` images.

    Held out: ``min(holdout_per_cell, count // 2)`` (never more than half a cell), 3:7 into val/test.
    Defects: the rest is ``gan_train``. Normal: of the rest, ``min(gan_normal_per_product, rest // 2)``
    is ``gan_train`` and the remainder ``gan_holdout`` (sources for synthesis), so neither is empty.
    """
    cell = f"cell (product {product!r}, defect {defect!r})"
    need = 4  # 2 held out (1 val + 1 test) and 2 left (gan_train, and gan_holdout for normal)
    if count < need:
        raise DataError(
            f"{cell} has {count} image(s): splits would be empty; it needs at least {need} "
            f"(val, test, gan_train{', gan_holdout' if defect == NORMAL else ''}) — add images or remove the folder"
        )
    held_out = min(holdout_per_cell, count // 2)
    val, test = split_held_out(held_out)
    rest = count - held_out
    if defect != NORMAL:
        return CellSplit(val, test, rest)
    gan_train = min(gan_normal_per_product, rest // 2)
    return CellSplit(val, test, gan_train, rest - gan_train)


# The field's MVTec AD protocol (DFMGAN, AAAI 2023; AnomalyDiffusion, AAAI 2024; SeaS, ICCV 2025): of each
# category x defect type, one third of the anomalies (with their masks) trains the generator, the rest is the test
# set. "One third" is floor(n / 3), at least 1; the test set gets the other n - floor(n / 3) (at least 1).
FIELD_TRAIN_DIVISOR = 3
FIELD_SPLIT_RULE = (
    "field protocol: per category x MVTec defect type of n anomalies, gan_train = max(1, floor(n / 3)), "
    "test = the rest; train/good: gan_train = min(gan_normal, floor(n / 2)), gan_holdout = the rest "
    "(synthesis sources); test/good: test; no val split; seeded shuffle within each cell"
)


def field_defect_split(product: str, defect: str, count: int) -> CellSplit:
    """One category x defect type under the field protocol: ``max(1, count // 3)`` gan_train, the rest test."""
    if count < 2:
        raise DataError(
            f"cell (product {product!r}, defect type {defect!r}) has {count} anomaly image(s); the field "
            f"protocol needs at least 2 (one third for gan_train, the rest for test) — add images or leave it out"
        )
    gan_train = max(1, count // FIELD_TRAIN_DIVISOR)
    return CellSplit(val=0, test=count - gan_train, gan_train=gan_train)


def field_normal_split(product: str, count: int, gan_normal_per_product: int) -> CellSplit:
    """A category's normal training images (MVTec train/good): ``min(gan_normal_per_product, count // 2)``
    gan_train, the rest gan_holdout (sources for synthesis, never seen by the GAN)."""
    if count < 2:
        raise DataError(
            f"product {product!r} has {count} normal training image(s) (train/good); it needs at least 2 "
            f"(gan_train and gan_holdout)"
        )
    gan_train = min(gan_normal_per_product, count // 2)
    return CellSplit(val=0, test=0, gan_train=gan_train, gan_holdout=count - gan_train)


TRAIN_GOOD, TEST_GOOD = (
    "train_good",
    "test_good",
)  # the field protocol's normal cells (MVTec train/ and test/good)


def _cell_rng(seed: int, product: str, cell: str) -> np.random.Generator:
    """One generator per (product, cell), so a category splits the same whether imported alone or with others."""
    return np.random.default_rng([seed, zlib.crc32(f"{product}/{cell}".encode())])


def plan_field_cell(product: str, cell: str, count: int, options: SplitOptions) -> CellSplit:
    """``cell``: TRAIN_GOOD, TEST_GOOD or a defect type."""
    if cell == TRAIN_GOOD:
        return field_normal_split(product, count, options.gan_normal_per_product)
    if cell == TEST_GOOD:
        return CellSplit(val=0, test=count, gan_train=0)
    return field_defect_split(product, cell, count)


def field_splits(products: Sequence[str], cells: Sequence[str], options: SplitOptions) -> list[str]:
    """One split name per item (parallel ``products`` and ``cells``) under ``FIELD_SPLIT_RULE``, seeded per cell.

    Shared by the MVTec importer (cells from train/good, test/good and test/<type>) and folder trees (normal/ is
    TRAIN_GOOD, each defect folder its own cell)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for number, (product, cell) in enumerate(zip(products, cells)):
        groups.setdefault((product, cell), []).append(number)
    for product in sorted(set(products)):
        if (product, TRAIN_GOOD) not in groups:
            raise DataError(f"product {product!r}: no normal training images (MVTec train/good, or normal/)")
    out = [""] * len(products)
    for (product, cell), numbers in sorted(groups.items()):
        plan = plan_field_cell(product, cell, len(numbers), options)
        order = _cell_rng(options.seed, product, cell).permutation(len(numbers))
        for label, position in zip(plan.labels(), order):
            out[numbers[position]] = label
    return out
