"""Tiny in-memory study data: three defect classes told apart by brightness (trivially separable)."""

from __future__ import annotations

import torch

from dtgan.data.labelled import LabelledImages
from dtgan.downstream.study_data import StudyData, synthetic_key

DEFECTS = ("normal", "scratch", "spot")
PRODUCTS = ("A", "B")
LEVEL = {0: 40, 1: 128, 2: 215}  # mean gray level of each defect class


def images_of(y: torch.Tensor, size: int, generator: torch.Generator, channels: int = 3) -> torch.Tensor:
    """uint8 (N, channels, size, size): gray level of the class +- 20 of noise."""
    base = torch.tensor([LEVEL[int(k)] for k in y], dtype=torch.float32)[:, None, None, None]
    noise = torch.randint(-20, 21, (len(y), 1, size, size), generator=generator).float()
    return (base + noise).clamp(0, 255).to(torch.uint8).expand(-1, channels, -1, -1).contiguous()


def labeled(counts: dict[tuple[int, int], int], size: int, generator: torch.Generator) -> LabelledImages:
    """counts: (product id, defect id) -> images."""
    y = torch.cat([torch.full((n,), k, dtype=torch.long) for (_, k), n in counts.items()])
    p = torch.cat([torch.full((n,), pid, dtype=torch.long) for (pid, _), n in counts.items()])
    return LabelledImages(images_of(y, size, generator), y, p)


def make_study_data(
    size: int = 32,
    normals_per_product: int = 40,
    real_defects: dict[tuple[int, int], int] | None = None,
    synthetic_per_set: int = 40,
    eval_per_cell: int = 6,
    seed: int = 0,
) -> StudyData:
    g = torch.Generator().manual_seed(seed)
    real_defects = real_defects or {(0, 1): 5, (0, 2): 3, (1, 1): 2, (1, 2): 7}
    cells = {(p, k): eval_per_cell for p in range(len(PRODUCTS)) for k in range(len(DEFECTS))}
    synthetic = {}
    for guidance, sources in (
        ("latent", ("all",)),
        ("reference", ("all", *PRODUCTS)),
        ("crop_paste", ("all",)),
    ):
        for src in sources:
            for product in PRODUCTS:
                for k in (1, 2):
                    y = torch.full((synthetic_per_set,), k, dtype=torch.long)
                    synthetic[synthetic_key(guidance, src, product, DEFECTS[k])] = images_of(y, size, g)
    return StudyData(
        defects=DEFECTS,
        products=PRODUCTS,
        train_normal=labeled({(p, 0): normals_per_product for p in range(len(PRODUCTS))}, size, g),
        train_defect=labeled(real_defects, size, g),
        val=labeled(cells, size, g),
        test=labeled(cells, size, g),
        synthetic=synthetic,
        meta={"fixture": "brightness"},
    )
