"""The field's defect-type classification protocol (AnomalyDiffusion, AAAI 2024; reported by the methods after DT-GAN).

Per product (MVTec category): a classifier of its defect *types* (no normal class) is trained on generated defects,
``field_images_per_defect`` per type, translated by the checkpoint from the product's ``gan_holdout`` normals (never
seen by the GAN; its ``gan_train`` normals when it has none), optionally plus the real ``gan_train`` defects (the one
third of the field protocol; ``field_real_defects``, papers differ, so the result records which). It is tested once,
after the last epoch (the protocol holds out no val split), on the product's real ``test`` defects: accuracy per
product and the mean over products, each the mean (and sample std) over ``num_seeds`` classifiers.

The classes of a product are the defect types with real test images; a type without ``gan_train`` images of the
product is still generated (by transfer) and marked ``transfer_only``. A product with fewer than two types has
nothing to classify: it is left out, and the result says so.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from dtgan import keys
from dtgan.config.downstream import DownstreamConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.vocab import NORMAL, NORMAL_INDEX
from dtgan.downstream.augment import traditional_augment
from dtgan.downstream.classifier import build_classifier
from dtgan.downstream.prepare import gray_uint8, resize_uint8
from dtgan.downstream.recipe import to_unit
from dtgan.errors import CheckpointError, DataError
from dtgan.evaluation.synthesis import synthesize
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)
PROTOCOL = "field_classification"
RESULT_FILE = "field_classification.json"


@dataclass
class FieldCategory:
    """One product's classification task: class j is ``defects[j]``; images uint8 (N, 1, S, S)."""

    product: str
    defects: tuple[str, ...]
    train_images: torch.Tensor
    train_y: torch.Tensor
    train_real: torch.Tensor  # (N,) bool: a real gan_train defect (else generated)
    test_images: torch.Tensor
    test_y: torch.Tensor
    transfer_only: tuple[str, ...] = ()  # types without gan_train images of this product

    def counts(self) -> dict:
        def per_class(y: torch.Tensor) -> dict[str, int]:
            return {d: int(n) for d, n in zip(self.defects, torch.bincount(y, minlength=len(self.defects)))}

        return {
            "train_generated": per_class(self.train_y[~self.train_real]),
            "train_real": per_class(self.train_y[self.train_real]),
            "test": per_class(self.test_y),
        }


@dataclass
class FieldData:
    categories: list[FieldCategory]
    skipped: dict[str, str] = field(default_factory=dict)  # product -> why it has no classifier
    meta: dict = field(default_factory=dict)


def _rows(ds: DefectImageDataset | None, mask: torch.Tensor | None = None) -> torch.Tensor:
    if ds is None:
        return torch.zeros(0, dtype=torch.long)
    return (mask if mask is not None else torch.ones(len(ds), dtype=torch.bool)).nonzero().flatten()


def _dataset(path: str, split: str, size: int, defects=None) -> DefectImageDataset | None:
    try:
        return DefectImageDataset(path, splits=(split,), img_size=size, defects=defects)
    except DataError as exc:
        if "no rows in split" in str(exc):
            return None
        raise


def prepare_field_data(
    cfg: DownstreamConfig, data_path: str, nets, checkpoint: str | None = None
) -> FieldData:
    """Every product's generated (and optionally real) training defects and real test defects at ``cfg.img_size``."""
    if nets is None:
        raise CheckpointError(f"downstream.protocol={PROTOCOL}: the generated defects need a checkpoint")
    gan_size = nets.config.model.img_size
    train = _dataset(data_path, "gan_train", cfg.img_size)
    test = _dataset(data_path, "test", cfg.img_size)
    if test is None or not bool((test.y != NORMAL_INDEX).any()):
        raise DataError(
            f"{data_path}: no real test defects to classify; import with the field split "
            "(dtgan data import mvtec|folders ... --protocol field)"
        )
    vocab = test.vocab
    if tuple(nets.vocab.defects) != tuple(vocab.defects) or tuple(nets.vocab.products) != tuple(
        vocab.products
    ):
        raise CheckpointError(
            f"{checkpoint}: trained on products {list(nets.vocab.products)} and defects {list(nets.vocab.defects)}, "
            f"the data set '{data_path}' has {list(vocab.products)} and {list(vocab.defects)}; use the checkpoint "
            "of a GAN trained on this data"
        )
    sources_ds = _dataset(data_path, "gan_holdout", gan_size, defects=(NORMAL,))
    train_gan = _dataset(data_path, "gan_train", gan_size)
    out = FieldData(
        [], meta={"data_path": str(data_path), "checkpoint": checkpoint, "gan_img_size": gan_size}
    )
    sources_of: dict[str, str] = {}
    for pid, product in enumerate(vocab.products):
        test_rows = _rows(test, (test.p == pid) & (test.y != NORMAL_INDEX))
        types = sorted({int(k) for k in test.y[test_rows]})
        if len(types) < 2:
            out.skipped[product] = f"{len(types)} defect type(s) with real test images; nothing to classify"
            continue
        sources, sources_of[product] = _sources(sources_ds, train_gan, pid, product, data_path)
        images, ys, real = [], [], []
        transfer_only = []
        for j, k in enumerate(types):
            key = f"{product}/{vocab.defects[k]}"
            references = None
            if cfg.field_guidance == "reference":
                references = _references(train_gan, pid, k, key, data_path)
            picks = torch.arange(cfg.field_images_per_defect) % sources.shape[0]
            fake = synthesize(
                nets,
                sources[picks],
                torch.full((len(picks),), k, dtype=torch.long),
                cfg.field_guidance,
                references=references,
                seed=cfg.seed + zlib.crc32(key.encode()),
                batch_size=cfg.synthesis_batch_size,
            )
            images.append(resize_uint8(gray_uint8(fake), cfg.img_size))
            ys.append(torch.full((len(picks),), j, dtype=torch.long))
            real.append(torch.zeros(len(picks), dtype=torch.bool))
            own = _rows(train, (train.p == pid) & (train.y == k)) if train is not None else _rows(None)
            if not own.numel():
                transfer_only.append(vocab.defects[k])
            if cfg.field_real_defects and own.numel():
                images.append(gray_uint8(train.images_uint8[own]))
                ys.append(torch.full((own.numel(),), j, dtype=torch.long))
                real.append(torch.ones(own.numel(), dtype=torch.bool))
            log.info("field classification: generated %d %s images", len(picks), key)
        remap = {k: j for j, k in enumerate(types)}
        out.categories.append(
            FieldCategory(
                product=product,
                defects=tuple(vocab.defects[k] for k in types),
                train_images=torch.cat(images),
                train_y=torch.cat(ys),
                train_real=torch.cat(real),
                test_images=gray_uint8(test.images_uint8[test_rows]),
                test_y=torch.tensor([remap[int(k)] for k in test.y[test_rows]], dtype=torch.long),
                transfer_only=tuple(transfer_only),
            )
        )
    if not out.categories:
        raise DataError(
            f"{data_path}: no product has two or more defect types with real test images "
            f"({'; '.join(f'{p}: {why}' for p, why in out.skipped.items())})"
        )
    out.meta["synthesis_sources"] = sources_of
    return out


def _sources(holdout, train_gan, pid: int, product: str, data_path: str) -> tuple[torch.Tensor, str]:
    """The product's normals to translate: gan_holdout (never seen by the GAN), else its gan_train normals."""
    rows = _rows(holdout, holdout.p == pid) if holdout is not None else _rows(None)
    if rows.numel():
        return holdout.images_uint8[rows], f"gan_holdout ({rows.numel()} normals)"
    rows = (
        _rows(train_gan, (train_gan.p == pid) & (train_gan.y == NORMAL_INDEX)) if train_gan else _rows(None)
    )
    if not rows.numel():
        raise DataError(f"{data_path}: product '{product}' has no normal images to translate into defects")
    log.warning(
        "field classification: %s has no gan_holdout normals; translating its gan_train normals", product
    )
    return train_gan.images_uint8[rows], f"gan_train ({rows.numel()} normals, seen by the GAN)"


def _references(train_gan, pid: int, k: int, key: str, data_path: str) -> torch.Tensor:
    """Reference guidance's style images: the product's gan_train defects of type k, else any product's."""
    if train_gan is None:
        raise DataError(f"{data_path}: no gan_train rows to guide reference synthesis")
    for mask in ((train_gan.p == pid) & (train_gan.y == k), train_gan.y == k):
        rows = _rows(train_gan, mask)
        if rows.numel():
            return train_gan.images_uint8[rows]
    raise DataError(
        f"{data_path}: no gan_train images of {key.split('/')[1]!r} to guide reference synthesis of {key}; "
        "use downstream.field_guidance=latent"
    )


def train_and_test(cat: FieldCategory, cfg: DownstreamConfig, seed: int, device: str) -> dict:
    """Train one product's classifier for ``cfg.epochs`` (SGD, cosine learning rate over the steps, traditional
    augmentation) and test the last epoch's weights once on the real test defects."""
    torch.manual_seed(seed)
    model, pretrained = build_classifier(cfg, num_classes=len(cat.defects), with_domain_head=False)
    model.to(device)
    batch = cfg.resolved_batch_size
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, math.ceil(len(cat.train_y) / batch))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps_per_epoch)
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(cat.train_y), generator=generator)
        for rows in order.split(batch):
            if rows.numel() < 2:  # BatchNorm needs two
                continue
            x = traditional_augment(to_unit(cat.train_images[rows], cfg.in_chans, device), cfg, generator)
            loss = F.cross_entropy(model(x).logits, cat.train_y[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    train_seconds = time.perf_counter() - t0
    predicted = _predict(model, cat.test_images, cfg, device)
    correct = predicted == cat.test_y
    per_class = {d: 100.0 * float(correct[cat.test_y == j].float().mean()) for j, d in enumerate(cat.defects)}
    return {
        "product": cat.product,
        "seed": seed,
        "pretrained": pretrained,
        "accuracy_pct": 100.0 * float(correct.float().mean()),
        "accuracy_pct_per_type": per_class,
        "test_images": len(cat.test_y),
        "train_images": len(cat.train_y),
        "train_seconds": train_seconds,
    }


@torch.no_grad()
def _predict(model, images: torch.Tensor, cfg: DownstreamConfig, device: str) -> torch.Tensor:
    model.eval()
    out = []
    for start in range(0, len(images), cfg.resolved_batch_size):
        x = to_unit(images[start : start + cfg.resolved_batch_size], cfg.in_chans, device)
        out.append(model(x).logits.argmax(1).cpu())
    return torch.cat(out)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_field_classification(
    cfg: DownstreamConfig, data: FieldData, device: str, out_path: str | Path | None = None
) -> dict:
    """Every product x seed classifier; per product mean +- std over seeds, and the mean over products."""
    seeds = [cfg.seed + i for i in range(cfg.num_seeds)]
    t0 = time.perf_counter()
    jobs = [train_and_test(cat, cfg, seed, device) for seed in seeds for cat in data.categories]
    per_product = {}
    for cat in data.categories:
        runs = [j for j in jobs if j["product"] == cat.product]
        mean, std = _mean_std([r["accuracy_pct"] for r in runs])
        per_product[cat.product] = {
            "accuracy_pct_mean": mean,
            "accuracy_pct_std": std,
            "seeds": [r["seed"] for r in runs],
            "defect_types": list(cat.defects),
            "transfer_only": list(cat.transfer_only),
            "images": cat.counts(),
        }
    per_seed_average = [
        statistics.fmean(j["accuracy_pct"] for j in jobs if j["seed"] == seed) for seed in seeds
    ]
    average, average_std = _mean_std(per_seed_average)
    metrics = {keys.field_accuracy_key(p): row["accuracy_pct_mean"] for p, row in per_product.items()}
    metrics[keys.field_accuracy_key()] = statistics.fmean(
        r["accuracy_pct_mean"] for r in per_product.values()
    )
    payload = {
        "protocol": PROTOCOL,
        "backbone": cfg.backbone,
        "pretrained": sorted({j["pretrained"] for j in jobs}),
        "trained_on": "generated + real gan_train defects"
        if cfg.field_real_defects
        else "generated defects only",
        "field_real_defects": cfg.field_real_defects,
        "guidance": cfg.field_guidance,
        "images_per_defect": cfg.field_images_per_defect,
        "img_size": cfg.img_size,
        "epochs": cfg.epochs,
        "device": device,
        "per_product": per_product,
        "average": {
            "accuracy_pct_mean": metrics[keys.field_accuracy_key()],
            "per_seed_accuracy_pct": per_seed_average,
            "accuracy_pct_std_over_seeds": average_std,
            "over": [c.product for c in data.categories],
        },
        "skipped": data.skipped,
        "metrics": metrics,
        "per_seed_metrics": [
            {
                **{
                    keys.field_accuracy_key(j["product"]): j["accuracy_pct"]
                    for j in jobs
                    if j["seed"] == seed
                },
                keys.field_accuracy_key(): avg,
            }
            for seed, avg in zip(seeds, per_seed_average)
        ],
        "config": cfg.model_dump(mode="json"),
        "meta": data.meta,
        "wall_seconds": time.perf_counter() - t0,
        "jobs": jobs,
    }
    if out_path is not None:
        write_text_atomic(out_path, json.dumps(payload, indent=2) + "\n")
    return payload


def markdown_table(payload: dict) -> str:
    """Accuracy % per product (mean +- std over seeds) and the mean over products."""
    lines = [
        f"| product | defect types | test images | accuracy % ({payload['backbone']}, {payload['trained_on']}) |",
        "|---|---|---:|---:|",
    ]
    for product, row in payload["per_product"].items():
        lines.append(
            f"| {product} | {', '.join(row['defect_types'])} | {sum(row['images']['test'].values())} | "
            f"{row['accuracy_pct_mean']:.1f} ± {row['accuracy_pct_std']:.1f} |"
        )
    lines.append(f"| **mean over products** | | | {payload['average']['accuracy_pct_mean']:.1f} |")
    return "\n".join(lines)


def plan_summary(cfg: DownstreamConfig) -> str:
    return (
        f"{PROTOCOL}: per product, {cfg.backbone} on {cfg.field_images_per_defect} {cfg.field_guidance}-guided "
        f"generated images per defect type{' + the real gan_train defects' if cfg.field_real_defects else ''}, "
        f"{cfg.epochs} epochs at {cfg.img_size} px, tested on the real test defects; {cfg.num_seeds} seed(s)"
    )
