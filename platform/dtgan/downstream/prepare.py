"""Prepare a study's inputs once: real splits from the Parquet data set and the synthetic sets from a checkpoint.

Which normals do what (per product, fixed by ``downstream.seed``, the same for every arm, size and seed):
  * synthesis sources, S per product (``synthesis_sources_per_product``; auto = the product's largest synthetic
    set, so each source is translated once per guidance and defect type): with ``synthesis_sources=holdout`` the
    first S of a seeded permutation of the ``gan_holdout`` normals, never classifier training images; with
    ``classifier_normals`` (the paper's protocol) the product's first S classifier normals, which every size N
    contains (a cell of size N draws at most N images per set, image j from source j);
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

from dtgan.config.crop_paste import CropPasteConfig
from dtgan.config.downstream import AUTO, CROP_PASTE_ARM, NO_FILTER, DownstreamConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.labelled import LabelledImages
from dtgan.data.parquet_io import read_table
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.downstream.arms import scope_product_ids, select_normals, synthetic_requirements
from dtgan.downstream.study import plan_cells
from dtgan.downstream.study_data import StudyData
from dtgan.downstream.synthetic_filter import DefectScorer, candidates_for, keep_best, load_defect_scorer
from dtgan.errors import CheckpointError, ConfigError, DataError
from dtgan.evaluation.crop_paste import DefectBank, crop_paste, defect_bank
from dtgan.evaluation.synthesis import synthesize
from dtgan.keys import SCOPE_ALL

log = logging.getLogger(__name__)


def gray_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, 1, H, W): the data sets are gray; the generator's 3 channels are averaged so
    that no channel difference can tell synthetic images from real ones."""
    if images.shape[1] == 1:
        return images.contiguous()
    return images.float().mean(dim=1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
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


def _labelled(ds: DefectImageDataset, rows: torch.Tensor) -> LabelledImages:
    return LabelledImages(gray_uint8(ds.images_uint8[rows]), ds.y[rows], ds.p[rows])


def _permuted(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return rows[torch.randperm(rows.numel(), generator=generator)]


def split_normals(
    holdout_p: torch.Tensor | None,
    train_p: torch.Tensor,
    train_normal_rows: torch.Tensor,
    num_products: int,
    reserved_per_product: list[int],
    seed: int,
):
    """Per product: (holdout rows reserved as synthesis sources, holdout rows for classifiers, gan_train rows)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for pid in range(num_products):
        holdout = (
            _permuted((holdout_p == pid).nonzero().squeeze(1), generator)
            if holdout_p is not None
            else torch.zeros(0, dtype=torch.long)
        )
        train = _permuted(train_normal_rows[train_p[train_normal_rows] == pid], generator)
        reserved = reserved_per_product[pid]
        out.append((holdout[:reserved], holdout[reserved:], train))
    return out


def sources_needed(requirements: dict[str, int], products: tuple[str, ...]) -> list[int]:
    """Per product, the largest synthetic set of it: with that many sources each source is translated once per
    guidance and defect type (Appendix C: "each Normal image into four defective images" on two defect types)."""
    need = [0] * len(products)
    for key, count in requirements.items():
        need[products.index(key.split("/")[2])] = max(need[products.index(key.split("/")[2])], count)
    return need


def sources_per_product(cfg: DownstreamConfig, need: list[int]) -> list[int]:
    """How many synthesis sources each product gets: ``auto`` = its need, else the configured number."""
    if cfg.synthesis_sources_per_product == AUTO:
        return list(need)
    return [int(cfg.synthesis_sources_per_product)] * len(need)  # reserved whatever the arms need


def _check_sources_fit(
    cfg: DownstreamConfig, products: tuple[str, ...], sources: list[int], train_p, holdout_p, train_rows
) -> None:
    """Reserved sources come out of gan_holdout; what is left must still hold the largest classifier size."""
    biggest = max(cfg.normal_images_per_product)
    for pid, count in enumerate(sources):
        holdout = 0 if holdout_p is None else int((holdout_p == pid).sum())
        train = int((train_p[train_rows] == pid).sum())
        if cfg.synthesis_sources == "holdout" and (count > holdout or train + holdout - count < biggest):
            raise DataError(
                f"product '{products[pid]}': the synthetic sets need {count} synthesis sources "
                f"(downstream.synthesis_sources_per_product={cfg.synthesis_sources_per_product}) reserved from its "
                f"{holdout} gan_holdout normals, and the classifier {biggest} normals, but it has {train + holdout} "
                f"({train} gan_train + {holdout} gan_holdout); set downstream.synthesis_sources=classifier_normals "
                "(the paper translates the training normals), fewer sources (reused round-robin) or a smaller "
                "downstream.normal_images_per_product"
            )


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
        unknown = [n for n in names if n != SCOPE_ALL and n not in products]
        if unknown:
            raise ConfigError(
                f"downstream.{key}: unknown product(s) {unknown}; use 'all' or {', '.join(products)}"
            )


def synthesize_sets(
    nets,
    requirements: dict[str, int],
    sources: dict[int, torch.Tensor],
    references: LabelledImages,
    data: StudyData,
    cfg: DownstreamConfig,
    scorer: DefectScorer | None = None,
    filter_log: dict | None = None,
) -> dict[str, torch.Tensor]:
    """synthetic_key -> uint8 (n, 1, img_size, img_size): source j of the set is source j mod S of the product.
    With ``scorer`` (``downstream.synthetic_filter``) n / synthetic_filter_keep candidates are rendered and the n
    that ``scorer`` rates highest kept, in rendering order; ``filter_log`` receives each set's scores."""
    out = {}
    for key, requested in sorted(requirements.items()):
        if requested == 0:
            continue
        count = requested if scorer is None else candidates_for(requested, cfg.synthetic_filter_keep)
        guidance, defect_source, product, defect = key.split("/")
        pid, k = data.product_index(product), data.defects.index(defect)
        product_sources = sources[pid]  # (S, 3, h, w) at the GAN's size
        picks = torch.arange(count) % product_sources.shape[0]
        refs = None
        if guidance == "reference":
            mask = references.y == k
            if defect_source != SCOPE_ALL:
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
        gray = gray_uint8(fake)
        if scorer is not None:
            scores = scorer(gray, k, defect)
            kept = keep_best(scores, requested)
            gray = gray[kept]
            if filter_log is not None:
                filter_log[key] = {
                    "candidates": count,
                    "kept": requested,
                    "score_mean_candidates": float(scores.mean()),
                    "score_mean_kept": float(scores[kept].mean()),
                }
            log.info(
                "kept %d of %d images for %s (P(%s) %.3f -> %.3f)",
                requested,
                count,
                key,
                defect,
                float(scores.mean()),
                float(scores[kept].mean()),
            )
        out[key] = resize_uint8(gray, cfg.img_size)
        log.info("synthesized %d images for %s", count, key)
    return out


def crop_paste_sets(
    requirements: dict[str, int],
    sources: dict[int, torch.Tensor],
    bank: DefectBank,
    data: StudyData,
    cfg: DownstreamConfig,
    crop_paste_cfg: CropPasteConfig,
) -> dict[str, torch.Tensor]:
    """'crop_paste/all/<product>/<defect>' -> uint8 (n, 1, img_size, img_size): real masked defects of any product
    pasted onto the product's synthesis sources (source j of the set is source j mod S), seeded per set."""
    out = {}
    for key, count in sorted(requirements.items()):
        if count == 0 or not key.startswith(f"{CROP_PASTE_ARM}/"):
            continue
        _, _, product, defect = key.split("/")
        pid, k = data.product_index(product), data.defects.index(defect)
        picks = torch.arange(count) % sources[pid].shape[0]
        out[key], _ = crop_paste(
            sources[pid][picks],
            torch.full((count,), k, dtype=torch.long),
            bank,
            crop_paste_cfg,
            seed=cfg.seed + zlib.crc32(key.encode()),
        )
        log.info("pasted %d images for %s", count, key)
    return out


def _crop_paste_bank(
    train_ds: DefectImageDataset, rows: torch.Tensor, requirements: dict[str, int]
) -> DefectBank:
    """The real training defects with masks, at the classifier's size; every pasted defect type must have some."""
    masks = train_ds.masks_uint8
    bank = defect_bank(
        gray_uint8(train_ds.images_uint8[rows]),
        None if masks is None else masks[rows],
        train_ds.y[rows],
        train_ds.p[rows],
        f"{train_ds.path} gan_train defects (downstream arm crop_paste)",
    )
    defects = train_ds.vocab.defects
    for key, count in requirements.items():
        defect = key.split("/")[3]
        if count and key.startswith(f"{CROP_PASTE_ARM}/") and not bank.rows_of(defects.index(defect)).numel():
            raise DataError(
                f"{train_ds.path}: no gan_train '{defect}' defect with a mask to paste (downstream arm crop_paste); "
                "import the masks with the data, or drop crop_paste from downstream.arms"
            )
    return bank


def prepare_study_data(
    cfg: DownstreamConfig,
    data_path: str,
    nets=None,
    checkpoint: str | None = None,
    crop_paste_cfg: CropPasteConfig | None = None,
) -> StudyData:
    """Real splits at ``cfg.img_size`` and every synthetic set the study needs: the generator's from ``nets``
    (InferenceNets), Crop&Paste's (``crop_paste_cfg``, default settings when None) from the real masked defects."""
    crop_paste_cfg = crop_paste_cfg or CropPasteConfig()
    train_ds = DefectImageDataset(data_path, splits=("gan_train",), img_size=cfg.img_size)
    vocab = train_ds.vocab
    products, defects = tuple(vocab.products), tuple(vocab.defects)
    _check_scopes(cfg, products)
    holdout_ds = _load(data_path, "gan_holdout", cfg.img_size, defects=("normal",))
    generator = torch.Generator().manual_seed(cfg.seed)
    normal_rows = (train_ds.y == NORMAL_INDEX).nonzero().squeeze(1)
    defect_rows = _limit_defects(train_ds, cfg, generator)
    held_out_path = cfg.held_out_data or data_path
    val_ds, test_ds = (_load(held_out_path, split, cfg.img_size) for split in ("val", "test"))
    if val_ds is None or test_ds is None:
        raise DataError(
            f"{held_out_path}: the classifier study needs 'val' and 'test' rows; re-split the data set"
        )
    if (tuple(test_ds.vocab.products), tuple(test_ds.vocab.defects)) != (products, defects):
        raise DataError(
            f"downstream.held_out_data {held_out_path}: products {list(test_ds.vocab.products)} and defects "
            f"{list(test_ds.vocab.defects)} differ from {data_path}'s {list(products)} and {list(defects)}; "
            "render it with the same --products and --defects"
        )
    train_defect = _labelled(train_ds, defect_rows)
    probe = StudyData(  # everything but the normals: what the synthetic requirements depend on
        defects=defects,
        products=products,
        train_normal=LabelledImages.empty_like(train_defect),
        train_defect=train_defect,
        val=_labelled(val_ds, torch.arange(len(val_ds))),
        test=_labelled(test_ds, torch.arange(len(test_ds))),
    )
    cells = plan_cells(cfg)
    requirements = synthetic_requirements(probe, [c for c in cells if c.synthetic], cfg.synthetic_share)
    sources = sources_per_product(cfg, sources_needed(requirements, products))
    holdout_p = None if holdout_ds is None else holdout_ds.p
    reserved = sources if cfg.synthesis_sources == "holdout" else [0] * len(products)
    if cfg.balanced_arms:
        _check_sources_fit(cfg, products, reserved, train_ds.p, holdout_p, normal_rows)
    parts = split_normals(holdout_p, train_ds.p, normal_rows, len(products), reserved, cfg.seed)
    normals, source_picks = [], {}
    for pid, (held, rest, train) in enumerate(parts):
        normals.append(_labelled(train_ds, train))
        if holdout_ds is not None:
            normals.append(_labelled(holdout_ds, rest))
        if cfg.synthesis_sources == "holdout":
            source_picks[pid] = [("gan_holdout", held[: sources[pid]])]
        else:  # the first S classifier normals of the product: within the first N of every size N >= S
            take_train = min(sources[pid], train.numel())
            source_picks[pid] = [
                ("gan_train", train[:take_train]),
                ("gan_holdout", rest[: sources[pid] - take_train]),
            ]
    cat = lambda xs: LabelledImages(*(torch.cat(t) for t in zip(*((x.images, x.y, x.p) for x in xs))))  # noqa: E731
    ids = {"gan_train": train_ds.ids, "gan_holdout": holdout_ds.ids if holdout_ds is not None else []}
    data = dataclasses.replace(
        probe,
        train_normal=cat(normals),
        meta={
            "data_path": str(data_path),
            "held_out_data": str(held_out_path),
            "checkpoint": checkpoint,
            "img_size": cfg.img_size,
            "synthesis_sources": cfg.synthesis_sources,
            "synthesis_source_ids": {
                products[pid]: [ids[split][i] for split, rows in picks for i in rows.tolist()]
                for pid, picks in source_picks.items()
            },
            "train_defect_ids": [train_ds.ids[i] for i in defect_rows.tolist()],
            "limit_defects_per_type": dict(cfg.limit_defects_per_type),
        },
    )
    biggest = max(cfg.normal_images_per_product)
    for product in cfg.products:  # fail before any synthesis if a size cannot be met
        select_normals(data, biggest, scope_product_ids(data, product))
    if not cfg.balanced_arms:
        return data
    if cfg.synthetic_arms and nets is None:
        raise ConfigError(f"downstream.arms {list(cfg.synthetic_arms)} need a checkpoint (CHECKPOINT_OR_RUN)")
    if nets is not None and (tuple(nets.vocab.defects) != defects or tuple(nets.vocab.products) != products):
        raise CheckpointError(
            f"{checkpoint}: trained on products {list(nets.vocab.products)} and defects "
            f"{list(nets.vocab.defects)}, the data set '{data_path}' has {list(products)} and "
            f"{list(defects)}; use the checkpoint of a GAN trained on this data"
        )
    short = [
        products[pid]
        for pid, picks in source_picks.items()
        if sources[pid] > sum(r.numel() for _, r in picks)
    ]
    if short:
        raise DataError(
            f"{data_path}: products {short} have too few normals as synthesis sources "
            f"(downstream.synthesis_sources={cfg.synthesis_sources}); every product needs some"
        )
    pastes = any(count and key.startswith(f"{CROP_PASTE_ARM}/") for key, count in requirements.items())
    bank = _crop_paste_bank(train_ds, defect_rows, requirements) if pastes else None
    synthetic: dict[str, torch.Tensor] = {}
    meta = dict(data.meta)
    if nets is not None and cfg.synthetic_arms:
        gan_size = nets.config.model.img_size
        at_gan_size = {
            "gan_holdout": DefectImageDataset(
                data_path, splits=("gan_holdout",), img_size=gan_size, defects=("normal",)
            )
            if holdout_ds is not None
            else None,
            "gan_train": DefectImageDataset(data_path, splits=("gan_train",), img_size=gan_size),
        }
        gan_train = at_gan_size["gan_train"]
        if (
            holdout_ds is not None and at_gan_size["gan_holdout"].ids != holdout_ds.ids
        ) or gan_train.ids != train_ds.ids:
            raise DataError(f"{data_path}: rows changed while reading; prepare the study again")
        references = LabelledImages(
            gan_train.images_uint8[defect_rows], gan_train.y[defect_rows], gan_train.p[defect_rows]
        )
        gan_requirements = {k: v for k, v in requirements.items() if not k.startswith(f"{CROP_PASTE_ARM}/")}
        scorer = load_defect_scorer(nets, data_path) if cfg.synthetic_filter != NO_FILTER else None
        filter_log: dict[str, dict] = {}
        synthetic.update(
            synthesize_sets(
                nets,
                gan_requirements,
                _pick(source_picks, at_gan_size),
                references,
                data,
                cfg,
                scorer,
                filter_log,
            )
        )
        meta.update({"checkpoint_step": nets.step, "gan_img_size": gan_size})
        if scorer is not None:
            meta["synthetic_filter"] = {
                "method": cfg.synthetic_filter,
                "keep": cfg.synthetic_filter_keep,
                "classifier": scorer.name,
                "sets": filter_log,
            }
    if bank is not None:
        at_classifier_size = {"gan_train": train_ds, "gan_holdout": holdout_ds}
        sources_gray = {pid: gray_uint8(x) for pid, x in _pick(source_picks, at_classifier_size).items()}
        synthetic.update(crop_paste_sets(requirements, sources_gray, bank, data, cfg, crop_paste_cfg))
        meta["crop_paste"] = crop_paste_cfg.model_dump(mode="json")
    meta["synthetic_counts"] = {k: int(v.shape[0]) for k, v in synthetic.items()}
    return dataclasses.replace(data, synthetic=synthetic, meta=meta)


def _pick(source_picks: dict[int, list], datasets: dict) -> dict[int, torch.Tensor]:
    """product id -> uint8 (S, C, h, w): the product's synthesis sources read from ``datasets`` (split -> data)."""
    return {
        pid: torch.cat([datasets[split].images_uint8[rows] for split, rows in picks if rows.numel()])
        for pid, picks in source_picks.items()
    }
