"""Prepare a study's inputs once: real splits from the Parquet data set and the synthetic sets from a checkpoint.

Which normals do what (per product, fixed by ``downstream.seed``, the same for every arm, size and seed):
  * synthesis sources: the first ``synthesis_sources_per_product`` of a seeded permutation of the
    ``gan_holdout`` normals; they are never classifier training images;
  * classifier normals: the ``gan_train`` normals (seeded order), then the remaining ``gan_holdout`` normals
    (seeded order); a size N takes the first N, so sizes are nested;
  * ``val`` selects the model, ``test`` is read once per classifier at the end; neither is seen by the GAN.
Real training defects are the ``gan_train`` defects (thinned per ``limit_defects_per_type``); the same
images are the references of reference-guided synthesis.
"""

from __future__ import annotations

import dataclasses
import logging
import zlib

import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F

from dtgan.config.downstream import ALL, DownstreamConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.parquet_io import read_table
from dtgan.downstream.arms import scope_product_ids, select_normals, synthetic_requirements
from dtgan.downstream.study import plan_cells
from dtgan.downstream.study_data import NORMAL_INDEX, LabeledImages, StudyData
from dtgan.errors import CheckpointError, ConfigError, DataError

log = logging.getLogger(__name__)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, 1, H, W): the data sets are gray; the generator's 3 channels are averaged so
    that no channel difference can tell synthetic images from real ones."""
    if images.shape[1] == 1:
        return images.contiguous()
    return images.float().mean(dim=1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, h, w) -> (N, C, size, size), antialiased."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def _load(
    path: str, split: str, img_size: int, defects: tuple[str, ...] | None = None
) -> DefectImageDataset | None:
    table, _ = read_table(path, columns=["split", "defect"])
    mask = pc.equal(table["split"], split)
    if defects is not None:
        mask = pc.and_(mask, pc.is_in(table["defect"], value_set=pa.array(list(defects))))
    if not pc.any(mask).as_py():
        return None
    return DefectImageDataset(path, splits=(split,), img_size=img_size, defects=defects)


def _labeled(ds: DefectImageDataset, rows: torch.Tensor) -> LabeledImages:
    return LabeledImages(_gray(ds.images_uint8[rows]), ds.y[rows], ds.p[rows])


def _permuted(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return rows[torch.randperm(rows.numel(), generator=generator)]


def split_normals(
    holdout_p: torch.Tensor | None,
    train_p: torch.Tensor,
    train_normal_rows: torch.Tensor,
    num_products: int,
    sources_per_product: int,
    seed: int,
):
    """Per product: (holdout rows that are synthesis sources, holdout rows for classifiers, gan_train rows)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for pid in range(num_products):
        holdout = (
            _permuted((holdout_p == pid).nonzero().squeeze(1), generator)
            if holdout_p is not None
            else torch.zeros(0, dtype=torch.long)
        )
        train = _permuted(train_normal_rows[train_p[train_normal_rows] == pid], generator)
        out.append((holdout[:sources_per_product], holdout[sources_per_product:], train))
    return out


def _limit_defects(ds: DefectImageDataset, cfg: DownstreamConfig, generator: torch.Generator) -> torch.Tensor:
    """Rows of the gan_train defects, thinned to ``limit_defects_per_type`` for the listed products."""
    rows = (ds.y != NORMAL_INDEX).nonzero().squeeze(1)
    for product, limit in cfg.limit_defects_per_type.items():
        if product not in ds.vocab.products:
            raise ConfigError(
                f"downstream.limit_defects_per_type: unknown product '{product}'; "
                f"products: {', '.join(ds.vocab.products)}"
            )
        pid = ds.vocab.product_index(product)
        for k in range(1, len(ds.vocab.defects)):
            cell = rows[(ds.p[rows] == pid) & (ds.y[rows] == k)]
            drop = _permuted(cell, generator)[limit:]
            rows = rows[~torch.isin(rows, drop)]
    return rows


def _check_scopes(cfg: DownstreamConfig, products: tuple[str, ...]) -> None:
    for key, names in (("products", cfg.products), ("defect_sources", cfg.defect_sources)):
        unknown = [n for n in names if n != ALL and n not in products]
        if unknown:
            raise ConfigError(
                f"downstream.{key}: unknown product(s) {unknown}; use 'all' or {', '.join(products)}"
            )


def synthesize_sets(
    nets,
    requirements: dict[str, int],
    sources: dict[int, torch.Tensor],
    references: LabeledImages,
    data: StudyData,
    cfg: DownstreamConfig,
) -> dict[str, torch.Tensor]:
    """synthetic_key -> uint8 (n, 1, img_size, img_size): source j of the set is source j mod S of the product."""
    from dtgan.evaluation.synthesis import synthesize

    out = {}
    for key, count in sorted(requirements.items()):
        if count == 0:
            continue
        guidance, defect_source, product, defect = key.split("/")
        pid, k = data.product_index(product), data.defects.index(defect)
        product_sources = sources[pid]  # (S, 3, h, w) at the GAN's size
        picks = torch.arange(count) % product_sources.shape[0]
        refs = None
        if guidance == "reference":
            mask = references.y == k
            if defect_source != ALL:
                mask &= references.p == data.product_index(defect_source)
            if not mask.any():
                raise DataError(
                    f"no gan_train '{defect}' defects of product '{defect_source}' to guide "
                    f"synthesis of {key}; drop '{defect_source}' from downstream.defect_sources"
                )
            refs = references.images[mask]
        seed = cfg.seed + zlib.crc32(key.encode())  # a set's images do not depend on which other sets exist
        fake = synthesize(
            nets,
            product_sources[picks],
            torch.full((count,), k, dtype=torch.long),
            guidance,
            references=refs,
            seed=seed,
            batch_size=cfg.synthesis_batch_size,
        )
        out[key] = _resize(_gray(fake), cfg.img_size)
        log.info("synthesized %d images for %s", count, key)
    return out


def prepare_study_data(
    cfg: DownstreamConfig, data_path: str, nets=None, checkpoint: str | None = None
) -> StudyData:
    """Real splits at ``cfg.img_size`` and, with ``nets`` (InferenceNets), every synthetic set the study needs."""
    train_ds = DefectImageDataset(data_path, splits=("gan_train",), img_size=cfg.img_size)
    vocab = train_ds.vocab
    products, defects = tuple(vocab.products), tuple(vocab.defects)
    _check_scopes(cfg, products)
    holdout_ds = _load(data_path, "gan_holdout", cfg.img_size, defects=("normal",))
    generator = torch.Generator().manual_seed(cfg.seed)
    normal_rows = (train_ds.y == NORMAL_INDEX).nonzero().squeeze(1)
    parts = split_normals(
        None if holdout_ds is None else holdout_ds.p,
        train_ds.p,
        normal_rows,
        len(products),
        cfg.synthesis_sources_per_product,
        cfg.seed,
    )
    normals, source_rows = [], {}
    for pid, (sources, rest, train) in enumerate(parts):
        normals.append(_labeled(train_ds, train))
        if holdout_ds is not None:
            normals.append(_labeled(holdout_ds, rest))
        source_rows[pid] = sources
    defect_rows = _limit_defects(train_ds, cfg, generator)
    val_ds, test_ds = (_load(data_path, split, cfg.img_size) for split in ("val", "test"))
    if val_ds is None or test_ds is None:
        raise DataError(
            f"{data_path}: the classifier study needs 'val' and 'test' rows; re-split the data set"
        )
    cat = lambda xs: LabeledImages(*(torch.cat(t) for t in zip(*((x.images, x.y, x.p) for x in xs))))  # noqa: E731
    data = StudyData(
        defects=defects,
        products=products,
        train_normal=cat(normals),
        train_defect=_labeled(train_ds, defect_rows),
        val=_labeled(val_ds, torch.arange(len(val_ds))),
        test=_labeled(test_ds, torch.arange(len(test_ds))),
        meta={
            "data_path": str(data_path),
            "checkpoint": checkpoint,
            "img_size": cfg.img_size,
            "synthesis_source_ids": {
                products[pid]: [holdout_ds.ids[i] for i in rows.tolist()] for pid, rows in source_rows.items()
            }
            if holdout_ds is not None
            else {},
            "train_defect_ids": [train_ds.ids[i] for i in defect_rows.tolist()],
            "limit_defects_per_type": dict(cfg.limit_defects_per_type),
        },
    )
    cells = plan_cells(cfg)
    biggest = max(cfg.normal_images_per_product)
    for product in cfg.products:  # fail before any training if a size cannot be met
        select_normals(data, biggest, scope_product_ids(data, product))
    if not cfg.synthetic_arms:
        return data
    if nets is None:
        raise ConfigError(f"downstream.arms {list(cfg.synthetic_arms)} need a checkpoint (CHECKPOINT_OR_RUN)")
    if tuple(nets.vocab.defects) != defects or tuple(nets.vocab.products) != products:
        raise CheckpointError(
            f"{checkpoint}: trained on products {list(nets.vocab.products)} and defects "
            f"{list(nets.vocab.defects)}, the data set '{data_path}' has {list(products)} and "
            f"{list(defects)}; use the checkpoint of a GAN trained on this data"
        )
    if holdout_ds is None or any(rows.numel() == 0 for rows in source_rows.values()):
        raise DataError(f"{data_path}: every product needs gan_holdout normals as synthesis sources")
    gan_size = nets.config.model.img_size
    gan_holdout = DefectImageDataset(
        data_path, splits=("gan_holdout",), img_size=gan_size, defects=("normal",)
    )
    gan_train = DefectImageDataset(data_path, splits=("gan_train",), img_size=gan_size)
    if gan_holdout.ids != holdout_ds.ids or gan_train.ids != train_ds.ids:  # row indices are shared below
        raise DataError(f"{data_path}: rows changed while reading; prepare the study again")
    sources = {pid: gan_holdout.images_uint8[rows] for pid, rows in source_rows.items()}
    references = LabeledImages(
        gan_train.images_uint8[defect_rows], gan_train.y[defect_rows], gan_train.p[defect_rows]
    )
    requirements = synthetic_requirements(data, [c for c in cells if c.synthetic])
    synthetic = synthesize_sets(nets, requirements, sources, references, data, cfg)
    meta = {
        **data.meta,
        "checkpoint_step": nets.step,
        "gan_img_size": gan_size,
        "synthetic_counts": {k: int(v.shape[0]) for k, v in synthetic.items()},
    }
    return dataclasses.replace(data, synthetic=synthetic, meta=meta)
