"""The evaluation protocol of docs/model.md#evaluation-protocol (paper Appendix C, docs/model.md#a14, docs/model.md#a15) on data already decoded: synthetic sets
per product x defect x guidance, FID/KID per product and over all products, disentanglement metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.data.labelled import LabelledImages
from dtgan.data.selection import round_robin
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.errors import DataError
from dtgan.evaluation.disentanglement import (
    identity_metrics,
    input_dependence,
    removal_metrics,
    self_reconstruction_metrics,
    transfer_and_paint_locality,
)
from dtgan.evaluation.extractors import ExtractorSpec
from dtgan.evaluation.feature_cache import RealSetKey
from dtgan.evaluation.fidelity import FeatureExtractor, choose_kid_subset_size, fid_kid_from_features
from dtgan.evaluation.synthesis import (
    latent_translator,
    self_reconstructor,
    shared_code_translator,
    synthesize,
)

log = logging.getLogger(__name__)

POOLED = "pooled"

# Receives each pooled scope's feature set as it is scored: (file name such as "gen_mix_all.npy" or
# "real_A.npy", (N, D) float32 features).
FeatureSink = Callable[[str, torch.Tensor], None]


@dataclass(frozen=True)
class EvaluationData:
    """What the protocol reads: the real defect set and references (reference_split), the normal sources
    (source_split) and, where the data has clean backgrounds, defect/clean pairs for removal."""

    products: tuple[str, ...]
    defects: tuple[str, ...]
    img_size: int
    reference_split: str
    references: (
        LabelledImages  # every row of the reference split (normal included: the extractor trains on it)
    )
    reference_fingerprint: str  # fingerprint_images of that split
    sources: LabelledImages  # normal rows of the source split
    # every row of evaluation.holdout_split (None when it is the reference split): the defect classifier's
    # held-out images
    holdout: LabelledImages | None = None
    holdout_split: str | None = None
    removal_defects: torch.Tensor | None = None  # uint8 (R, 3, H, W)
    removal_clean: torch.Tensor | None = None  # uint8 (R, 1|3, H, W)

    @property
    def defect_indices(self) -> list[int]:
        return [k for k in range(len(self.defects)) if k != NORMAL_INDEX]


@dataclass
class SyntheticSets:
    """Synthetic uint8 images per (guidance, product index, defect index), and the generation throughput."""

    images: dict[tuple[str, int, int], torch.Tensor] = field(default_factory=dict)
    # (product, defect) -> (rows of the latent set, rows of the reference set) that make up the mix set.
    mix_rows: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    generated_images: int = 0
    generation_s: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.generated_images / self.generation_s if self.generation_s > 0 else float("nan")


def synthetic_cells(data: EvaluationData, cfg: EvaluationConfig) -> list[tuple[int, int]]:
    """The (product, defect) cells that are synthesised and scored (``evaluation.synthetic_cells``): every
    product x defect domain, or only those with real defect images in the reference split."""
    cells = [(p, d) for p in range(len(data.products)) for d in data.defect_indices]
    if cfg.synthetic_cells == "all":
        return cells
    refs = data.references
    return [(p, d) for p, d in cells if bool(((refs.p == p) & (refs.y == d)).any())]


def cell_seed(seed: int, *parts: int) -> int:
    """A distinct, reproducible seed per (guidance, product, defect) cell."""
    out = seed
    for part in parts:
        out = (out * 1_000_003 + part + 1) % (2**62)
    return out


def _source_rows(sources: LabelledImages, product: int, count: int, seed: int) -> torch.Tensor:
    """``count`` rows of product ``product``: a seeded permutation, repeated when there are fewer sources."""
    rows = torch.nonzero(sources.p == product).flatten()
    order = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))]
    return order.repeat((count + len(order) - 1) // len(order))[:count]


def build_synthetic_sets(nets, data: EvaluationData, cfg: EvaluationConfig) -> SyntheticSets:
    """Latent and reference sets of ``images_per_product_per_defect`` per cell, and the mix set drawn half
    from each (docs/model.md#evaluation-protocol)."""
    count = cfg.images_per_product_per_defect
    sets = SyntheticSets()
    cells = synthetic_cells(data, cfg)
    for p, product in enumerate(data.products):
        if not bool((data.sources.p == p).any()):
            raise DataError(
                f"no normal '{product}' images in split {cfg.source_split} to translate; "
                f"set evaluation.source_split to a split that has some"
            )
        for d in data.defect_indices:
            if (p, d) not in cells:
                continue
            rows = _source_rows(data.sources, p, count, cell_seed(cfg.seed, 0, p, d))
            x_src = data.sources.images[rows]
            y_trg = torch.full((count,), d, dtype=torch.long)
            refs = data.references.images[data.references.y == d]  # that defect's images, any product
            if len(refs) == 0:
                raise DataError(
                    f"no '{data.defects[d]}' images in split {data.reference_split} to use as references"
                )
            for g, guidance in enumerate(("latent", "reference")):
                started = time.perf_counter()
                x_fake = synthesize(
                    nets,
                    x_src,
                    y_trg,
                    guidance,
                    references=refs if guidance == "reference" else None,
                    seed=cell_seed(cfg.seed, g + 1, p, d),
                    batch_size=cfg.batch_size,
                )
                sets.generation_s += time.perf_counter() - started
                sets.generated_images += count
                sets.images[(guidance, p, d)] = x_fake
            draw = torch.Generator().manual_seed(cell_seed(cfg.seed, 3, p, d))
            half = count // 2
            from_latent = torch.randperm(count, generator=draw)[:half]
            from_reference = torch.randperm(count, generator=draw)[: count - half]
            sets.mix_rows[(p, d)] = (from_latent, from_reference)
            sets.images[("mix", p, d)] = torch.cat(
                [sets.images[("latent", p, d)][from_latent], sets.images[("reference", p, d)][from_reference]]
            )
    log.info(
        "generated %d images in %.1f s (%.1f images/s)",
        sets.generated_images,
        sets.generation_s,
        sets.images_per_s,
    )
    return sets


def _groups(data: EvaluationData, per_defect: bool) -> list[tuple[int | None, int | None]]:
    """(product index or None = all, defect index or None = pooled) of every score."""
    products: list[int | None] = [None, *range(len(data.products))]
    groups = [(p, None) for p in products]
    if per_defect:
        groups += [(p, d) for p in products for d in data.defect_indices]
    return groups


def _real_rows(reals: LabelledImages, products: list[int], defects: list[int]) -> torch.Tensor:
    """(N,) bool: the real images of these products and defect types."""
    return torch.isin(reals.y, torch.tensor(defects)) & torch.isin(reals.p, torch.tensor(products))


def _selection(data: EvaluationData, p_sel: int | None, d_sel: int | None) -> tuple[list[int], list[int]]:
    products = list(range(len(data.products))) if p_sel is None else [p_sel]
    return products, (data.defect_indices if d_sel is None else [d_sel])


def check_kid_feasible(data: EvaluationData, cfg: EvaluationConfig) -> None:
    """Fail before generating anything when a real set is too small for KID (names the set)."""
    for p_sel, d_sel in _groups(data, cfg.per_defect):
        products, defects = _selection(data, p_sel, d_sel)
        n_real = int(_real_rows(data.references, products, defects).sum())
        if d_sel is not None and n_real == 0:
            continue  # no per-defect score for an unseen cell (see fidelity_scores)
        cells = synthetic_cells(data, cfg)
        n_cells = sum((p, d) in cells for p in products for d in defects)
        if n_cells == 0:
            continue
        n_fake = cfg.images_per_product_per_defect * n_cells
        product_name = keys.SCOPE_ALL if p_sel is None else data.products[p_sel]
        defect_name = POOLED if d_sel is None else data.defects[d_sel]
        choose_kid_subset_size(
            cfg,
            n_fake,
            n_real,
            f"product {product_name}, defect {defect_name} (real: split {data.reference_split})",
        )


def synthetic_features(
    sets: SyntheticSets, features: FeatureExtractor, logits: dict | None = None
) -> dict[tuple[str, int, int], torch.Tensor]:
    """(N, D) features of every synthetic cell, each image through the extractor once: the mix set's rows
    are taken from the latent and reference sets' features (the same images). With ``logits`` (a dict to
    fill) the extractor's logits of every cell go there, for the Inception Score."""
    layers = {cell: features.extract(images) for cell, images in sets.images.items() if cell[0] != "mix"}
    for cell, images in sets.images.items():
        if cell[0] != "mix":
            continue
        rows = sets.mix_rows.get(cell[1:])
        if rows is None:
            layers[cell] = features.extract(images)
        else:
            from_latent, from_reference = rows
            latent, reference = layers[("latent", *cell[1:])], layers[("reference", *cell[1:])]
            layers[cell] = {
                name: torch.cat([latent[name][from_latent], reference[name][from_reference]])
                for name in latent
            }
    if logits is not None:
        logits.update({cell: out[features.spec.logits_layer] for cell, out in layers.items()})
    return {cell: out[features.spec.feature_layer] for cell, out in layers.items()}


def scope_name(product: str) -> str:
    """The scope of a product's feature files: its name as in the metric keys (``all`` for all products)."""
    return product if product == keys.SCOPE_ALL else keys.safe_name(product)


def fidelity_scores(
    sets: SyntheticSets,
    data: EvaluationData,
    extractor: ExtractorSpec,
    cfg: EvaluationConfig,
    device: torch.device,
    feature_sink: FeatureSink | None = None,
    logits: dict | None = None,
    guidances: tuple[str, ...] = keys.GUIDANCES,
) -> list[dict]:
    """FID/KID of every guidance x (all products, each product) [x each defect], as report records.

    ``guidances`` names the sets ``sets`` holds (a method without guidance, Crop&Paste, has only ``mix``).

    ``feature_sink`` receives the features of the pooled scopes (all products and each product, the defect
    types pooled) as ``gen_{guidance}_{scope}.npy`` and ``real_{scope}.npy``: exactly the rows FID/KID were
    computed on. ``logits`` (a dict to fill) receives the extractor's logits of every synthetic cell, from
    the same forward pass (the Inception Score's input).
    """
    records = []
    reals = data.references
    features = FeatureExtractor(extractor, cfg, device, with_logits=logits is not None)
    fake = synthetic_features(sets, features, logits)
    for p_sel, d_sel in _groups(data, cfg.per_defect):
        products, defects = _selection(data, p_sel, d_sel)
        x_real = reals.images[_real_rows(reals, products, defects)]
        product_name = keys.SCOPE_ALL if p_sel is None else data.products[p_sel]
        defect_name = POOLED if d_sel is None else data.defects[d_sel]
        if d_sel is not None and len(x_real) == 0:
            log.warning("no real '%s' images of product %s: no per-defect score", defect_name, product_name)
            continue
        real_key = RealSetKey(
            data_fingerprint=data.reference_fingerprint,
            split=data.reference_split,
            selection=f"product={product_name};defect={defect_name}",
            img_size=data.img_size,
            extractor=extractor.name,
            weights_fingerprint=extractor.weights_fingerprint,
        )
        real = features.real(x_real, real_key)
        sink = feature_sink if d_sel is None else None
        scope = scope_name(product_name)
        if sink is not None:
            sink(keys.real_features_file(scope), real.features)
        present = [(p, d) for p in products for d in defects if ("mix", p, d) in fake]
        if not present:
            log.warning(
                "no synthetic cells of product %s (evaluation.synthetic_cells): no score", product_name
            )
            continue
        for guidance in guidances:
            f_fake = torch.cat([fake[(guidance, p, d)] for p, d in present])
            what = f"{guidance}, product {product_name}, defect {defect_name} (real: split {data.reference_split})"
            result = fid_kid_from_features(f_fake, real, extractor, cfg, what=what)
            if sink is not None:
                sink(keys.generated_features_file(guidance, scope), f_fake)
            key_product = None if p_sel is None else data.products[p_sel]
            key_defect = None if d_sel is None else data.defects[d_sel]
            records.append(
                {
                    "guidance": guidance,
                    "product": product_name,
                    "defect": defect_name,
                    "fid_key": keys.fid_key(guidance, key_product, key_defect),
                    "kid_key": keys.kid_key(guidance, key_product, key_defect),
                    **result.as_dict(),
                }
            )
    return records


def disentanglement_scores(nets, data: EvaluationData, cfg: EvaluationConfig) -> dict[str, dict]:
    """identity and transfer locality on held-out normals; removal where clean backgrounds exist."""
    translate = latent_translator(nets, seed=cell_seed(cfg.seed, 4), batch_size=cfg.batch_size)
    rows = round_robin(data.sources.p, cfg.disentanglement_num_images)
    x_normal = data.sources.images[rows]
    out: dict[str, dict] = {
        "identity": {**identity_metrics(translate, x_normal), "n": len(rows)},
        "input_dependence": {
            **input_dependence(
                shared_code_translator(nets, cell_seed(cfg.seed, 5), cfg.batch_size),
                x_normal,
                [NORMAL_INDEX, *data.defect_indices],
            ),
            "n": len(rows),
        },
        "self_reconstruction": {
            **self_reconstruction_metrics(self_reconstructor(nets, NORMAL_INDEX, cfg.batch_size), x_normal),
            "n": len(rows),
        },
    }
    defects = torch.tensor(data.defect_indices)
    y_trg = defects[torch.arange(len(rows)) % len(defects)]
    out["transfer"] = {
        **transfer_and_paint_locality(
            translate,
            self_reconstructor(nets, NORMAL_INDEX, cfg.batch_size),
            x_normal,
            y_trg,
            cfg.locality_top_fraction,
        ),
        "n": len(rows),
        "top_fraction": cfg.locality_top_fraction,
    }
    if data.removal_defects is not None and len(data.removal_defects):
        n = min(len(data.removal_defects), cfg.disentanglement_num_images)
        out["removal"] = {
            **removal_metrics(translate, data.removal_defects[:n], data.removal_clean[:n]),
            "n": n,
            "split": cfg.removal_split,
        }
    else:
        log.info(
            "removal not scored: no defect images with a clean background in split %s", cfg.removal_split
        )
    return out
