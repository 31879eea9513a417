"""``evaluate(checkpoint)``, top to bottom: the inputs (:mod:`dtgan.evaluation.inputs`), the protocol's scores,
the grids, the report (:mod:`dtgan.evaluation.report`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.model import ModelConfig
from dtgan.data.selection import round_robin
from dtgan.evaluation.crop_paste_evaluate import classifier_judgement, score_ladder
from dtgan.evaluation.diversity import diversity_scores
from dtgan.evaluation.extractors import resolve_extractor
from dtgan.evaluation.feature_files import FeatureWriter
from dtgan.evaluation.grids import latent_grid, reference_grid, save_grid_png, style_grid
from dtgan.evaluation.ic_lpips import LpipsEmbedder, LpipsSpec, resolve_lpips
from dtgan.evaluation.inputs import checkpoint_inputs, offline_training_images
from dtgan.evaluation.protocol import (
    EvaluationData,
    build_synthetic_sets,
    check_kid_feasible,
    disentanglement_scores,
    fidelity_scores,
)
from dtgan.evaluation.report import EvaluationOutput, write_checkpoint_report

log = logging.getLogger(__name__)


def write_grids(nets, data: EvaluationData, cfg: EvaluationConfig, out_dir: Path) -> list[str]:
    """latent.png, reference.png and styles.png (Fig. 6) under ``out_dir``."""
    sources = data.sources.images[round_robin(data.sources.p, cfg.grid_num_sources)]
    refs = data.references
    ref_rows = torch.cat(
        [
            torch.nonzero(refs.y == d).flatten()[round_robin(refs.p[refs.y == d], cfg.grid_num_references)]
            for d in data.defect_indices
        ]
    )
    tiles, cols = latent_grid(nets, sources, data.defect_indices, cfg.grid_num_styles, cfg.seed)
    written = [save_grid_png(tiles, cols, out_dir / "latent.png")]
    tiles, cols = reference_grid(nets, sources, refs.images[ref_rows], refs.y[ref_rows], cfg.batch_size)
    written.append(save_grid_png(tiles, cols, out_dir / "reference.png"))
    defects = torch.tensor(data.defect_indices)
    y_trg = defects[torch.arange(len(sources)) % len(defects)]
    contents = torch.stack(
        [
            refs.images[torch.nonzero(refs.y == int(d)).flatten()[i % int((refs.y == d).sum())]]
            for i, d in enumerate(y_trg)
        ]
    )
    tiles, cols = style_grid(nets, sources, contents, y_trg, cfg.grid_num_styles, cfg.seed)
    written.append(save_grid_png(tiles, cols, out_dir / "styles.png"))
    return [str(p) for p in written]


def score_diversity(
    images: dict, logits: dict, data: EvaluationData, extractor, lpips: LpipsSpec | str, cfg, device
) -> list[dict]:
    """IS and IC-LPIPS of every synthetic set (``dtgan.evaluation.diversity``)."""
    refs = data.references
    embed = LpipsEmbedder(lpips, device) if isinstance(lpips, LpipsSpec) else None
    return diversity_scores(
        images,
        logits,
        (refs.images, refs.y, refs.p),
        data.products,
        data.defects,
        data.defect_indices,
        extractor,
        lpips,
        embed,
        cfg,
    )


def evaluate(
    checkpoint: str | Path,
    cfg: EvaluationConfig,
    data_path: str | None = None,
    out_dir: str | Path | None = None,
    expected_model: ModelConfig | None = None,
) -> EvaluationOutput:
    """Evaluate a checkpoint (or a run folder's latest) and write ``evaluation.json`` and the grids.

    ``data_path`` defaults to the data the run was trained on; ``expected_model`` (a preset's model section)
    must match the checkpoint's when given.
    """
    started = time.perf_counter()
    inputs = checkpoint_inputs(checkpoint, cfg, data_path, out_dir, expected_model)
    nets, data = inputs.nets, inputs.data
    check_kid_feasible(data, cfg)
    extractor = resolve_extractor(cfg, lambda: offline_training_images(data))
    lpips = resolve_lpips(cfg)  # bad LPIPS weights fail before generation; none offline: a reason

    sets = build_synthetic_sets(nets, data, cfg)
    features = FeatureWriter(inputs.out_dir / keys.FEATURES_DIR) if cfg.save_features else None
    logits: dict = {}
    fidelity = fidelity_scores(
        sets, data, extractor, cfg, inputs.device, feature_sink=features, logits=logits
    )
    diversity = score_diversity(sets.images, logits, data, extractor, lpips, cfg, inputs.device)
    disentanglement = disentanglement_scores(nets, data, cfg)
    ladder = score_ladder(inputs, extractor, cfg)
    quality, recall = classifier_judgement(data, extractor, cfg, sets, logits)
    grids = write_grids(nets, data, cfg, inputs.out_dir)

    output = write_checkpoint_report(
        inputs,
        cfg,
        extractor,
        lpips,
        sets,
        features,
        fidelity,
        diversity,
        disentanglement,
        grids,
        wall_s=time.perf_counter() - started,
        ladder=ladder,
        defect_classifier=quality,
        defect_recall=recall,
    )
    log.info(
        "evaluation of %s (step %d) written to %s in %.1f s",
        inputs.checkpoint,
        nets.step,
        output.report_path,
        output.report["wall_s"],
    )
    return output
