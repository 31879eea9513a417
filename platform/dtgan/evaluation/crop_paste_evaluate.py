"""Crop&Paste on the evaluation protocol of the GAN runs: the same sources, real set, extractor and FID/KID cells.

Per product x defect it pastes ``images_per_product_per_defect`` real defects of that type (from any product of the
reference split, by their masks) onto the product's normal sources (``source_split``), seeded per cell like the GAN's
sets. Crop&Paste has no guidance: its one set is scored under the ``mix`` keys, the set the paper's Table 1 compares
methods on. Of the disentanglement metrics only transfer locality applies (a paste changes a few pixels by design).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.crop_paste import CropPasteConfig
from dtgan.config.evaluation import EvaluationConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.selection import round_robin
from dtgan.errors import DataError
from dtgan.evaluation.crop_paste import METHOD, DefectBank, crop_paste, crop_paste_translator, defect_bank
from dtgan.evaluation.defect_classifier import DefectClassifier, classifier_quality, quality_metrics
from dtgan.evaluation.defect_recall import defect_recall_scores, recall_metrics
from dtgan.evaluation.disentanglement import transfer_and_paint_locality
from dtgan.evaluation.extractors import (
    DEFECT_CNN,
    ExtractorSpec,
    resolve_defect_classifier,
    resolve_extractor,
)
from dtgan.evaluation.feature_files import FeatureWriter
from dtgan.evaluation.fidelity import FeatureExtractor
from dtgan.evaluation.grids import save_grid_png
from dtgan.evaluation.inputs import DataInputs, data_inputs, offline_training_images
from dtgan.evaluation.ladder import ladder_metrics, ladder_tag, validity_ladder
from dtgan.evaluation.protocol import (
    EvaluationData,
    SyntheticSets,
    _source_rows,
    cell_seed,
    check_kid_feasible,
    fidelity_scores,
)
from dtgan.evaluation.report import (
    EvaluationOutput,
    data_block,
    extractor_tags,
    fidelity_metrics,
    write_evaluation,
)

log = logging.getLogger(__name__)

GUIDANCE = "mix"  # the keys Crop&Paste's one set is logged under
SET_STREAM, TRANSFER_STREAM = 6, 7  # cell_seed streams of its own (the GAN's sets use 0..5)


def reference_bank(inputs: DataInputs, cfg: EvaluationConfig) -> DefectBank:
    """The reference split's defect images with their masks, at the evaluation size."""
    data_path, data = inputs.data_path, inputs.data
    ds = DefectImageDataset(
        data_path, splits=(cfg.reference_split,), img_size=data.img_size, defects=data.defects[1:]
    )
    return defect_bank(
        ds.images_uint8, ds.masks_uint8, ds.y, ds.p, f"{data_path} split {cfg.reference_split} defects"
    )


def score_ladder(inputs: DataInputs, extractor, cfg: EvaluationConfig, bank=None) -> dict | None:
    """The validity ladder of the data and extractor (``evaluation.ladder``), or None when switched off; without
    masks in the reference split it has no Crop&Paste rung."""
    if not cfg.ladder:
        return None
    if bank is None:
        try:
            bank = reference_bank(inputs, cfg)
        except DataError as exc:
            log.warning("validity ladder without its Crop&Paste rung: %s", exc)
    features = FeatureExtractor(extractor, cfg, inputs.device)
    return validity_ladder(inputs.data, features, cfg, bank)


def classifier_judgement(
    data: EvaluationData, extractor: ExtractorSpec, cfg: EvaluationConfig, sets: SyntheticSets, logits: dict
) -> tuple[dict | None, dict | None]:
    """The defect classifier's own quality and the defect recall of ``sets`` (``evaluation.defect_recall``);
    ``logits`` are reused when the FID extractor is that classifier. (None, None) when switched off."""
    if not cfg.defect_recall:
        return None, None
    spec = (
        extractor
        if extractor.name == DEFECT_CNN
        else resolve_defect_classifier(cfg, lambda: offline_training_images(data))
    )
    clf = DefectClassifier.load(spec, data.products, data.defects)
    quality = classifier_quality(
        clf,
        data.references,
        data.reference_fingerprint,
        data.reference_split,
        data.holdout,
        data.holdout_split,
        data.products,
        data.defects,
    )
    recall = defect_recall_scores(clf, sets, data, logits if spec == extractor else None)
    return quality, recall


def build_crop_paste_sets(
    data: EvaluationData, bank: DefectBank, cfg: EvaluationConfig, crop_cfg: CropPasteConfig
) -> SyntheticSets:
    """('mix', product, defect) -> uint8 (count, 3, S, S): pastes onto seeded normal sources of the product."""
    count = cfg.images_per_product_per_defect
    sets = SyntheticSets()
    for p, product in enumerate(data.products):
        if not bool((data.sources.p == p).any()):
            raise DataError(
                f"no normal '{product}' images in split {cfg.source_split} to paste onto; "
                "set evaluation.source_split to a split that has some"
            )
        for d in data.defect_indices:
            if not bank.rows_of(d).numel():
                raise DataError(
                    f"no '{data.defects[d]}' image with a mask in split {cfg.reference_split} to cut out"
                )
            rows = _source_rows(data.sources, p, count, cell_seed(cfg.seed, 0, p, d))  # the GAN's sources
            started = time.perf_counter()
            pasted, _ = crop_paste(
                data.sources.images[rows],
                torch.full((count,), d, dtype=torch.long),
                bank,
                crop_cfg,
                seed=cell_seed(cfg.seed, SET_STREAM, p, d),
            )
            sets.generation_s += time.perf_counter() - started
            sets.generated_images += count
            sets.images[(GUIDANCE, p, d)] = pasted
    return sets


def _grid(
    data: EvaluationData, bank: DefectBank, cfg: EvaluationConfig, crop_cfg: CropPasteConfig, out: Path
):
    """Rows: sources; columns: the source, then ``grid_num_styles`` pastes per defect type."""
    sources = data.sources.images[round_robin(data.sources.p, cfg.grid_num_sources)]
    columns = [sources]
    for d in data.defect_indices:
        for k in range(cfg.grid_num_styles):
            y = torch.full((len(sources),), d, dtype=torch.long)
            columns.append(crop_paste(sources, y, bank, crop_cfg, seed=cell_seed(cfg.seed, 8, d, k))[0])
    return str(save_grid_png(torch.stack(columns, dim=1).flatten(0, 1), len(columns), out / "crop_paste.png"))


def evaluate_crop_paste(
    data_path: str,
    cfg: EvaluationConfig,
    crop_cfg: CropPasteConfig,
    img_size: int,
    out_dir: str | Path,
) -> EvaluationOutput:
    """Score Crop&Paste like :func:`dtgan.evaluation.evaluate.evaluate` scores a checkpoint; writes the JSON,
    the grid and (``save_features``) the feature arrays the report's bootstrap reads."""
    started = time.perf_counter()
    inputs = data_inputs(data_path, cfg, img_size, out_dir)
    data, out_dir = inputs.data, inputs.out_dir
    bank = reference_bank(inputs, cfg)
    check_kid_feasible(data, cfg)
    extractor = resolve_extractor(cfg, lambda: offline_training_images(data))
    sets = build_crop_paste_sets(data, bank, cfg, crop_cfg)
    features = FeatureWriter(out_dir / keys.FEATURES_DIR) if cfg.save_features else None
    logits: dict = {}
    fidelity = fidelity_scores(
        sets,
        data,
        extractor,
        cfg,
        inputs.device,
        feature_sink=features,
        logits=logits,
        guidances=(GUIDANCE,),
    )
    quality, recall = classifier_judgement(data, extractor, cfg, sets, logits)
    rows = round_robin(data.sources.p, cfg.disentanglement_num_images)
    defects = torch.tensor(data.defect_indices)
    y_trg = defects[torch.arange(len(rows)) % len(defects)]
    translate = crop_paste_translator(bank, crop_cfg, cell_seed(cfg.seed, TRANSFER_STREAM))
    transfer = {
        # Crop&Paste reproduces its source exactly: its own reconstruction is the source
        **transfer_and_paint_locality(
            translate, lambda x: x, data.sources.images[rows], y_trg, cfg.locality_top_fraction
        ),
        "n": len(rows),
        "top_fraction": cfg.locality_top_fraction,
    }
    grid = _grid(data, bank, cfg, crop_cfg, out_dir)
    ladder = score_ladder(inputs, extractor, cfg, bank)
    metrics = fidelity_metrics(fidelity)
    metrics.update({k: v for k, v in transfer.items() if k.startswith(keys.EVAL_PREFIX)})
    metrics[keys.EVAL_GENERATED_IMAGES_PER_S] = sets.images_per_s
    metrics.update(ladder_metrics(ladder))
    metrics.update(quality_metrics(quality))
    metrics.update(recall_metrics(recall))
    tags = {
        **extractor_tags(extractor),
        **ladder_tag(ladder),
        keys.TAG_METHOD: METHOD,
        keys.TAG_VARIANT: METHOD,
    }
    report = {
        "method": METHOD,
        # no checkpoint tells the image size: the data block names it
        "data": {**data_block(inputs, cfg, defects_with_masks=len(bank)), "img_size": data.img_size},
        "scored_as": f"the {GUIDANCE} keys (Crop&Paste has no guidance)",
        "feature_extractor": extractor.as_dict(),
        "validity_ladder": ladder,
        "defect_classifier": quality,
        "defect_recall": recall,
        "metrics": metrics,
        "tags": tags,
        "fidelity": fidelity,
        "features": features.summary() if features is not None else None,
        "disentanglement": {"transfer": transfer},
        "crop_paste": crop_cfg.model_dump(mode="json"),
        "throughput": {"generated_images": sets.generated_images, "generation_s": sets.generation_s},
        "grids": [grid],
        "evaluation_config": cfg.model_dump(mode="json"),
        "wall_s": time.perf_counter() - started,
    }
    output = write_evaluation(out_dir, report, metrics, tags, features)
    log.info("Crop&Paste evaluation written to %s in %.1f s", output.report_path, report["wall_s"])
    return output
