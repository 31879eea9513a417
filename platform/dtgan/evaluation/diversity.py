"""The field's yardsticks beside FID/KID: Inception Score and IC-LPIPS of every synthetic set.

- IS: torch-fidelity's ``isc_features_to_metric`` on the FID extractor's logits (Inception's ``logits_unbiased``
  with the real weights; the offline ``dtgan-defect-cnn``'s product x defect logits without them). Every record
  names the extractor; only ``inception-v3-compat`` values compare with published IS.
- IC-LPIPS (``dtgan.evaluation.ic_lpips``): per product x defect cell against that cell's real images; a product's
  value (and the all-products one) is the mean over its cells. Without LPIPS weights every record says why it is
  "not computed" and no number is logged.

Scopes: every product x defect cell, each product (defects pooled), each defect type (products pooled) and all;
IS of a pooled scope is that of the pooled images.
"""

from __future__ import annotations

import logging

import torch
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.extractors import ExtractorSpec
from dtgan.evaluation.ic_lpips import ClusterResult, Embed, LpipsSpec, ic_lpips

log = logging.getLogger(__name__)

POOLED = "pooled"
IS_MIN_IMAGES_PER_SPLIT = 10  # fewer splits on small sets: IS of a 1-image split is exactly 1
COMPUTED = "computed"


def inception_score(logits: torch.Tensor, cfg: EvaluationConfig) -> dict:
    """IS (mean and std over splits) of (N, K) logits, torch-fidelity's formula, seeded shuffle."""
    splits = max(1, min(cfg.is_splits, logits.shape[0] // IS_MIN_IMAGES_PER_SPLIT))
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=cfg.seed)
    return {"is_mean": out[KEY_METRIC_ISC_MEAN], "is_std": out[KEY_METRIC_ISC_STD], "is_splits": splits}


def _scopes(n_products: int, defects: list[int]) -> list[tuple[int | None, int | None]]:
    return [(p, d) for p in [None, *range(n_products)] for d in [None, *defects]]


def diversity_scores(
    images: dict[tuple[str, int, int], torch.Tensor],
    logits: dict[tuple[str, int, int], torch.Tensor],
    reals: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    products: tuple[str, ...],
    defects: tuple[str, ...],
    defect_indices: list[int],
    extractor: ExtractorSpec,
    lpips: LpipsSpec | str,
    embed: Embed | None,
    cfg: EvaluationConfig,
) -> list[dict]:
    """IS and IC-LPIPS records of every guidance x scope.

    Args:
        images: synthetic uint8 images per (guidance, product index, defect index).
        logits: the extractor's logits of the same images.
        reals: (uint8 images, defect index, product index) of the real reference set.
        lpips: the LPIPS network, or the reason IC-LPIPS is not computed (then ``embed`` is None).
        embed: images -> LPIPS embedding (``LpipsEmbedder``).
    """
    real_images, real_y, real_p = reals
    cells: dict[tuple[str, int, int], ClusterResult | str] = {}
    for guidance in keys.GUIDANCES:
        for p in range(len(products)):
            for d in defect_indices:
                if (guidance, p, d) not in images:
                    continue  # not synthesised (evaluation.synthetic_cells)
                rows = (real_y == d) & (real_p == p)
                if isinstance(lpips, str):
                    cells[(guidance, p, d)] = lpips
                elif not bool(rows.any()):
                    cells[(guidance, p, d)] = f"not computed: no real '{defects[d]}' images of {products[p]}"
                else:
                    fake = images[(guidance, p, d)][: cfg.ic_lpips_max_images]
                    cells[(guidance, p, d)] = ic_lpips(
                        fake, real_images[rows], embed, cfg.batch_size, cfg.ic_lpips_max_per_cluster
                    )
    records = []
    for guidance in keys.GUIDANCES:
        for p_sel, d_sel in _scopes(len(products), defect_indices):
            members = [
                (p, d)
                for p in (range(len(products)) if p_sel is None else [p_sel])
                for d in (defect_indices if d_sel is None else [d_sel])
                if (guidance, p, d) in images
            ]
            if not members:
                continue  # no synthesised cell in this scope (evaluation.synthetic_cells)
            product = None if p_sel is None else products[p_sel]
            defect = None if d_sel is None else defects[d_sel]
            record = {
                "guidance": guidance,
                "product": product or keys.SCOPE_ALL,
                "defect": defect or POOLED,
                "is_key": keys.is_key(guidance, product, defect),
                **inception_score(torch.cat([logits[(guidance, p, d)] for p, d in members]), cfg),
                "n_fake": sum(len(images[(guidance, p, d)]) for p, d in members),
                "extractor": extractor.name,
                "weights_fingerprint": extractor.weights_fingerprint,
                "ic_lpips_key": keys.ic_lpips_key(guidance, product, defect),
                **_ic_lpips_of(cells, guidance, members, lpips),
            }
            records.append(record)
    log.info(
        "IS with %s@%s; IC-LPIPS %s",
        extractor.name,
        extractor.weights_fingerprint,
        lpips if isinstance(lpips, str) else f"with LPIPS {lpips.label}",
    )
    return records


def _ic_lpips_of(
    cells: dict[tuple[str, int, int], ClusterResult | str],
    guidance: str,
    members: list[tuple[int, int]],
    lpips: LpipsSpec | str,
) -> dict:
    """A scope's IC-LPIPS: its one cell's, or the mean over its cells that have a value."""
    found = [cells[(guidance, p, d)] for p, d in members]
    scored = [c for c in found if isinstance(c, ClusterResult)]
    out = {
        "ic_lpips_backbone": None if isinstance(lpips, str) else lpips.label,
        "ic_lpips_cells": len(scored),
    }
    if not scored:
        reasons = [c for c in found if isinstance(c, str)]
        return {**out, "ic_lpips": None, "ic_lpips_status": reasons[0]}
    out.update(ic_lpips=sum(c.ic_lpips for c in scored) / len(scored), ic_lpips_status=COMPUTED)
    if len(found) == 1:
        cell = scored[0]
        out.update(
            ic_lpips_nonzero=cell.ic_lpips_nonzero,
            ic_lpips_images=cell.n_fake,
            ic_lpips_clusters=cell.n_real,
            ic_lpips_clusters_with_pairs=cell.clusters_with_pairs,
        )
    return out
