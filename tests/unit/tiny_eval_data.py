"""Tiny evaluation data (32 px, two products, normal/scratch/spot): the references with masks, held-out rows of
every label, normal sources, as :class:`~dtgan.evaluation.protocol.EvaluationData`."""

from __future__ import annotations

import torch
from eval_testdata import KINDS, backgrounds, paint, to_rgb_uint8

from dtgan.data.labelled import LabelledImages
from dtgan.evaluation.crop_paste import defect_bank
from dtgan.evaluation.feature_cache import fingerprint_images
from dtgan.evaluation.protocol import EvaluationData

PRODUCTS = ("A", "B")


def labelled_rows(n_per_cell: int, seed: int, skip: tuple[tuple[int, int], ...] = ()):
    """(LabelledImages, masks) of every product x kind but ``skip``; product B is brighter than A."""
    images, masks, ys, ps = [], [], [], []
    for p in range(len(PRODUCTS)):
        for y, kind in enumerate(KINDS):
            if (p, y) in skip:
                continue
            x, m = paint(backgrounds(n_per_cell, seed + 10 * p + y) + 30 * p, kind, seed + 100 + 10 * p + y)
            images.append(to_rgb_uint8(x))
            masks.append(m)
            ys.append(torch.full((n_per_cell,), y))
            ps.append(torch.full((n_per_cell,), p))
    images, y, p = torch.cat(images), torch.cat(ys), torch.cat(ps)
    ids = tuple(f"s{seed}-r{i}" for i in range(len(y)))
    return LabelledImages(images, y, p, ids), torch.cat(masks)


def tiny_data(
    n_per_cell: int = 24, seed: int = 0, skip: tuple[tuple[int, int], ...] = (), n_holdout: int = 10
) -> tuple[EvaluationData, object]:
    """Two products (B brighter than A), normal/scratch/spot; the references with masks, normal sources."""
    refs, masks = labelled_rows(n_per_cell, seed, skip)
    images, y, p, ids = refs.images, refs.y, refs.p, refs.ids
    holdout, _ = labelled_rows(n_holdout, seed + 7000)
    src = torch.cat([to_rgb_uint8(backgrounds(n_per_cell, seed + 500 + q) + 30 * q) for q in range(2)])
    sources = LabelledImages(
        src, torch.zeros(len(src), dtype=torch.long), torch.arange(2).repeat_interleave(n_per_cell)
    )
    data = EvaluationData(
        products=PRODUCTS,
        defects=KINDS,
        img_size=32,
        reference_split="gan_train",
        references=refs,
        reference_fingerprint=fingerprint_images(ids, images),
        sources=sources,
        holdout=holdout,
        holdout_split="val",
    )
    bank = defect_bank(images[y > 0], masks[y > 0], y[y > 0], p[y > 0], "tiny")
    return data, bank
