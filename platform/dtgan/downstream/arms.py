"""The training set of each study arm, with the class counts it promises.

Every arm trains on the same real images: N normals per product in scope (the first N of the ordered
candidates, so sizes are nested) + all real training defects of those products. Let T be the number of
normals. ``no_aug`` and ``trad_aug`` oversample each defect class to T (whole repetitions + a seeded
remainder); ``latent``, ``reference`` and ``mix`` instead add max(0, T - r_k) synthetic images of class k
(r_k real ones), split evenly over the products in scope, each drawn in order from that product's
synthetic set. ``mix`` takes ceil(d/2) latent and floor(d/2) reference images of a deficit d, the same
sources giving both, as in Appendix C. ``crop_paste`` adds the same d images made by Crop&Paste (real masked
defects of any product pasted onto the same synthesis sources): the cheapest alternative to a generator, with the
same recipe (traditional augmentation, domain head). ``crop_paste_mix`` adds floor(d/2) Crop&Paste images and
ceil(d/2) of ``mix`` (itself half latent, half reference), drawn from the same sets: the combination of the two.
So every arm has the class counts {normal: T, k: max(T, r_k)}.

``downstream.synthetic_share`` s scales every deficit to round(s x d) (the balancing is then off by design: class k
gets r_k + round(s x d) images); s = 1 is the rule above.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dtgan.config.downstream import CROP_PASTE_ARM, CROP_PASTE_MIX_ARM, SYNTHETIC_ARMS
from dtgan.data.labelled import LabelledImages
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.downstream.study_data import StudyData, synthetic_key
from dtgan.errors import DataError
from dtgan.keys import ARMS, SCOPE_ALL

# The paper always adds traditional augmentation to the synthetic arms; crop_paste gets the same recipe.
AUGMENTED_ARMS = tuple(arm for arm in ARMS if arm != "no_aug")
GUIDED_ARMS = (
    "reference",
    "mix",
    CROP_PASTE_MIX_ARM,
)  # arms with reference-guided images: defect sources apply


@dataclass(frozen=True)
class Cell:
    """One row of the study table: an arm at a size, for a classifier scope and a defect source."""

    arm: str
    normal_images_per_product: int
    product: str = SCOPE_ALL  # classifier scope: 'all' = products pooled
    defect_source: str = SCOPE_ALL  # product whose training defects guide reference synthesis (vA, vB, ...)

    @property
    def synthetic(self) -> bool:
        return self.arm in SYNTHETIC_ARMS

    def label(self, with_size: bool = True) -> str:
        """'reference_vA_B_n4000': arm, defect source, scope, size; 'all' parts are left out."""
        parts = [self.arm]
        if self.defect_source != SCOPE_ALL:
            parts.append(f"v{self.defect_source}")
        if self.product != SCOPE_ALL:
            parts.append(self.product)
        if with_size:
            parts.append(f"n{self.normal_images_per_product}")
        return "_".join(parts)


@dataclass(frozen=True)
class TrainingSet:
    """A pool of images and the index of one epoch over it (repeated entries = oversampling)."""

    images: torch.Tensor  # (B, C, H, W) uint8
    y: torch.Tensor  # (B,) long
    synthetic: torch.Tensor  # (B,) float: 0 real, 1 synthetic (the domain head's target)
    index: torch.Tensor  # (M,) long into the pool; one epoch
    augment: bool  # traditional augmentation (flip, jitter, lighting)

    def __len__(self) -> int:
        return self.index.shape[0]

    def class_counts(self, defects: tuple[str, ...]) -> dict[str, int]:
        counts = torch.bincount(self.y[self.index], minlength=len(defects))
        return {name: int(c) for name, c in zip(defects, counts)}

    @property
    def num_synthetic(self) -> int:
        return int(self.synthetic[self.index].sum())


def scope_product_ids(data: StudyData, product: str) -> list[int]:
    return list(range(len(data.products))) if product == SCOPE_ALL else [data.product_index(product)]


def in_scope(split: LabelledImages, product_ids: list[int]) -> LabelledImages:
    return split.where(torch.isin(split.p, torch.tensor(product_ids)))


def select_normals(data: StudyData, n_per_product: int, product_ids: list[int]) -> LabelledImages:
    """The first ``n_per_product`` classifier normals of each product (nested over sizes)."""
    picks = []
    for pid in product_ids:
        rows = (data.train_normal.p == pid).nonzero().squeeze(1)
        if rows.numel() < n_per_product:
            raise DataError(
                f"product '{data.products[pid]}' has {rows.numel()} classifier normals (gan_train + gan_holdout "
                f"minus synthesis sources), fewer than downstream.normal_images_per_product={n_per_product}; "
                "lower it, or set downstream.synthesis_sources=classifier_normals (no normals reserved)"
            )
        picks.append(rows[:n_per_product])
    return data.train_normal.subset(torch.cat(picks))


def synthetic_deficits(data: StudyData, cell: Cell, share: float = 1.0) -> dict[tuple[int, int], int]:
    """(product id, defect id) -> synthetic images that balance defect class k to the normal count T, times
    ``share`` (``downstream.synthetic_share``; 1.0 = balanced)."""
    product_ids = scope_product_ids(data, cell.product)
    total_normals = cell.normal_images_per_product * len(product_ids)
    defects = in_scope(data.train_defect, product_ids)
    out = {}
    for k in range(len(data.defects)):
        if k == NORMAL_INDEX:
            continue
        deficit = max(0, total_normals - int((defects.y == k).sum()))
        if share != 1.0:
            deficit = round(deficit * share)
        each, extra = divmod(deficit, len(product_ids))
        for i, pid in enumerate(product_ids):
            out[(pid, k)] = each + (1 if i < extra else 0)
    return out


def _mix_parts(d: int) -> dict[str, int]:
    """The mix arm's share of ``d`` images: 50/50, the latent half rounded up."""
    return {"latent": (d + 1) // 2, "reference": d // 2}


def synthetic_draws(data: StudyData, cell: Cell, share: float = 1.0) -> dict[str, int]:
    """synthetic_key -> how many images (the first ones of that set) the cell's training set takes."""
    draws: dict[str, int] = {}
    source = cell.defect_source if cell.arm in GUIDED_ARMS else SCOPE_ALL
    for (pid, k), d in synthetic_deficits(data, cell, share).items():
        product, defect = data.products[pid], data.defects[k]
        if cell.arm in ("latent", CROP_PASTE_ARM):
            parts = {cell.arm: d}
        elif cell.arm == "reference":
            parts = {"reference": d}
        elif cell.arm == CROP_PASTE_MIX_ARM:  # half the generator's mix (rounded up), half Crop&Paste
            parts = {**_mix_parts((d + 1) // 2), CROP_PASTE_ARM: d // 2}
        else:
            parts = _mix_parts(d)
        for guidance, count in parts.items():
            key = synthetic_key(guidance, source if guidance == "reference" else SCOPE_ALL, product, defect)
            draws[key] = count
    return draws


def synthetic_requirements(data: StudyData, cells: list[Cell], share: float = 1.0) -> dict[str, int]:
    """synthetic_key -> the largest number of images any synthetic cell draws from it."""
    need: dict[str, int] = {}
    for cell in cells:
        if cell.synthetic:
            for key, count in synthetic_draws(data, cell, share).items():
                need[key] = max(need.get(key, 0), count)
    return need


def _oversample(rows: torch.Tensor, target: int, generator: torch.Generator) -> torch.Tensor:
    """``rows`` repeated to ``target`` entries: whole repetitions plus a seeded random remainder."""
    r = rows.numel()
    if r >= target:
        return rows
    whole, rest = divmod(target, r)
    return torch.cat([rows.repeat(whole), rows[torch.randperm(r, generator=generator)[:rest]]])


def build_training_set(data: StudyData, cell: Cell, seed: int, share: float = 1.0) -> TrainingSet:
    """The training set of ``cell``; ``seed`` only picks which real defects the oversampling remainder repeats;
    ``share`` scales the synthetic images (``downstream.synthetic_share``)."""
    product_ids = scope_product_ids(data, cell.product)
    normals = select_normals(data, cell.normal_images_per_product, product_ids)
    defects = in_scope(data.train_defect, product_ids)
    images, y = [normals.images, defects.images], [normals.y, defects.y]
    synthetic = [torch.zeros(len(normals) + len(defects))]
    total_normals = len(normals)
    index = torch.arange(len(normals) + len(defects))
    if cell.synthetic:
        for key, count in synthetic_draws(data, cell, share).items():
            if count == 0:
                continue
            pool = data.synthetic.get(key)
            if pool is None or pool.shape[0] < count:
                have = 0 if pool is None else pool.shape[0]
                raise DataError(
                    f"synthetic set '{key}' has {have} images, the cell {cell.label()} needs {count}; "
                    "prepare the study data again for this config"
                )
            defect = key.split("/")[3]
            images.append(pool[:count])
            y.append(torch.full((count,), data.defects.index(defect), dtype=torch.long))
            synthetic.append(torch.ones(count))
        index = torch.arange(sum(t.shape[0] for t in images))
    else:
        generator = torch.Generator().manual_seed(seed)
        parts = [torch.arange(len(normals))]
        for k in range(len(data.defects)):
            if k == NORMAL_INDEX:
                continue
            rows = (defects.y == k).nonzero().squeeze(1) + len(normals)
            if rows.numel() == 0:
                raise DataError(
                    f"no real '{data.defects[k]}' training defects for scope '{cell.product}' to oversample; "
                    "use a synthetic arm or another downstream.products scope"
                )
            parts.append(_oversample(rows, total_normals, generator))
        index = torch.cat(parts)
    channels = max(t.shape[1] for t in images)
    images = [t.expand(-1, channels, -1, -1) if t.shape[1] != channels else t for t in images]
    return TrainingSet(
        images=torch.cat(images),
        y=torch.cat(y),
        synthetic=torch.cat(synthetic),
        index=index,
        augment=cell.arm in AUGMENTED_ARMS,
    )
