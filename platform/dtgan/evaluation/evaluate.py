"""``evaluate(checkpoint)``: load the EMA networks and the data, run the protocol, write grids and the JSON."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.model import ModelConfig
from dtgan.data.selection import round_robin
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.errors import CheckpointError, DataError
from dtgan.evaluation.diversity import COMPUTED, diversity_scores
from dtgan.evaluation.extractors import LabelledImages, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_images
from dtgan.evaluation.feature_files import FeatureWriter
from dtgan.evaluation.grids import latent_grid, reference_grid, save_grid_png, style_grid
from dtgan.evaluation.ic_lpips import LpipsEmbedder, LpipsSpec, resolve_lpips
from dtgan.evaluation.protocol import (
    EvaluationData,
    LabelledSet,
    build_synthetic_sets,
    check_kid_feasible,
    disentanglement_scores,
    fidelity_scores,
)
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

REPORT_FILE = "evaluation.json"
EVALUATION_DIR = "evaluation"


@dataclass(frozen=True)
class EvaluationOutput:
    """Where the report went and its flat metrics (key -> number) for tracking."""

    out_dir: Path
    report_path: Path
    metrics: dict[str, float]
    tags: dict[str, str]
    report: dict
    feature_paths: tuple[Path, ...] = ()  # <out_dir>/features/*.npy written by this evaluation


def write_evaluation(out_dir: Path, report: dict, metrics: dict, tags: dict, features) -> EvaluationOutput:
    """``<out_dir>/evaluation.json`` written atomically (strict JSON), and what the caller logs to MLflow."""
    report_path = write_text_atomic(
        out_dir / REPORT_FILE, json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
    )
    return EvaluationOutput(
        out_dir=out_dir,
        report_path=report_path,
        metrics=metrics,
        tags=tags,
        report=report,
        feature_paths=tuple(features.paths()) if features is not None else (),
    )


def check_model_matches(checkpoint: Path, saved: ModelConfig, expected: ModelConfig | None) -> None:
    """A preset given for evaluation must describe the checkpoint's networks."""
    if expected is None or expected == saved:
        return
    a, b = saved.model_dump(), expected.model_dump()
    diffs = ", ".join(f"model.{k}: saved {a[k]!r} vs preset {b[k]!r}" for k in sorted(a) if a[k] != b[k])
    raise CheckpointError(
        f"{checkpoint}: checkpoint from another model configuration ({diffs}); pass the preset the run was "
        f"trained with, or no -c"
    )


def _labelled(ds) -> LabelledSet:
    return LabelledSet(ds.images_uint8, ds.y, ds.p, tuple(str(i) for i in ds.ids))


def _check_vocab(data_vocab, nets_vocab, data_path: str) -> None:
    if tuple(data_vocab.products) != tuple(nets_vocab.products) or tuple(data_vocab.defects) != tuple(
        nets_vocab.defects
    ):
        raise CheckpointError(
            f"{data_path}: products {list(data_vocab.products)} / defects {list(data_vocab.defects)} differ from the "
            f"checkpoint's {list(nets_vocab.products)} / {list(nets_vocab.defects)}; evaluate on the data the run "
            f"was trained on (--data PATH)"
        )


def load_evaluation_data(data_path: str, nets_vocab, cfg: EvaluationConfig, img_size: int) -> EvaluationData:
    """Decode the reference split, the normal sources and the removal pairs at the model's image size."""
    from dtgan.data.dataset import DefectImageDataset

    refs_ds = DefectImageDataset(data_path, splits=(cfg.reference_split,), img_size=img_size)
    _check_vocab(refs_ds.vocab, nets_vocab, data_path)
    references = _labelled(refs_ds)
    src_ds = DefectImageDataset(data_path, splits=(cfg.source_split,), img_size=img_size)
    sources_all = _labelled(src_ds)
    sources = sources_all.select(torch.nonzero(sources_all.y == NORMAL_INDEX).flatten())
    removal_defects = removal_clean = None
    rm_ds = DefectImageDataset(data_path, splits=(cfg.removal_split,), img_size=img_size)
    clean = getattr(rm_ds, "clean_uint8", None)
    if clean is not None:
        has_clean = (rm_ds.y != NORMAL_INDEX) & _has_clean(rm_ds)
        rows = torch.nonzero(has_clean).flatten()
        rows = rows[round_robin(rm_ds.p[rows], cfg.disentanglement_num_images)] if len(rows) else rows
        removal_defects, removal_clean = rm_ds.images_uint8[rows], clean[rows]
    return EvaluationData(
        products=tuple(nets_vocab.products),
        defects=tuple(nets_vocab.defects),
        img_size=img_size,
        reference_split=cfg.reference_split,
        references=references,
        reference_fingerprint=fingerprint_images(references.ids, references.images),
        sources=sources,
        removal_defects=removal_defects,
        removal_clean=removal_clean,
    )


def _has_clean(ds) -> torch.Tensor:
    """(N,) bool: rows whose clean background is stored."""
    flags = getattr(ds, "has_clean", None)
    if flags is not None:
        return torch.as_tensor(flags, dtype=torch.bool)
    return torch.ones(len(ds.y), dtype=torch.bool)


def offline_training_images(data: EvaluationData) -> LabelledImages:
    """The reference split labelled product x defect: the offline extractor's training set."""
    refs = data.references
    labels = refs.p * len(data.defects) + refs.y
    names = [f"{p}/{d}" for p in data.products for d in data.defects]
    return LabelledImages(refs.images, labels, names, data.reference_fingerprint)


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


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def json_safe(obj):
    """Non-finite floats -> None (strict JSON), recursively."""
    if isinstance(obj, float):
        return _finite(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


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


def lpips_tags(lpips: LpipsSpec | str) -> dict[str, str]:
    """``lpips_backbone`` (trunk/weights fingerprint) when IC-LPIPS was computed, and ``ic_lpips_status``."""
    if isinstance(lpips, LpipsSpec):
        return {keys.TAG_LPIPS_BACKBONE: lpips.label, keys.TAG_IC_LPIPS_STATUS: COMPUTED}
    return {keys.TAG_IC_LPIPS_STATUS: lpips}


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
    from dtgan.training.checkpoint import load_inference_nets, resolve_checkpoint, run_dir_of
    from dtgan.training.environment import resolve_device

    started = time.perf_counter()
    device = resolve_device(cfg.device, "evaluation.device")
    checkpoint = resolve_checkpoint(checkpoint)
    nets = load_inference_nets(checkpoint, device=device)
    check_model_matches(checkpoint, nets.config.model, expected_model)
    data_path = data_path or nets.config.data.path
    data = load_evaluation_data(data_path, nets.vocab, cfg, nets.config.model.img_size)
    if not data.defect_indices:
        raise DataError(f"{data_path}: no defect domains besides normal; nothing to synthesise")
    out_dir = (
        Path(out_dir)
        if out_dir is not None
        else run_dir_of(checkpoint) / EVALUATION_DIR / f"step_{nets.step:08d}"
    )
    check_kid_feasible(data, cfg)
    extractor = resolve_extractor(cfg, lambda: offline_training_images(data))
    lpips = resolve_lpips(cfg)  # bad LPIPS weights fail before generation; none offline: a reason

    sets = build_synthetic_sets(nets, data, cfg)
    features = FeatureWriter(out_dir / keys.FEATURES_DIR) if cfg.save_features else None
    logits: dict = {}
    fidelity = fidelity_scores(sets, data, extractor, cfg, device, feature_sink=features, logits=logits)
    diversity = score_diversity(sets.images, logits, data, extractor, lpips, cfg, device)
    disentanglement = disentanglement_scores(nets, data, cfg)
    grids = write_grids(nets, data, cfg, out_dir)

    metrics: dict[str, float] = {}
    for record in fidelity:
        metrics[record["fid_key"]] = record["fid"]
        metrics[record["kid_key"]] = record["kid_mean"]
    for record in diversity:
        metrics[record["is_key"]] = record["is_mean"]
        if record["ic_lpips"] is not None:
            metrics[record["ic_lpips_key"]] = record["ic_lpips"]
    for scores in disentanglement.values():
        metrics.update({k: v for k, v in scores.items() if k.startswith(keys.EVAL_PREFIX)})
    metrics[keys.EVAL_GENERATED_IMAGES_PER_S] = sets.images_per_s
    tags = {
        keys.TAG_FID_EXTRACTOR: extractor.name,
        keys.TAG_FID_WEIGHTS: extractor.weights_fingerprint,
        **lpips_tags(lpips),
    }
    report = {
        "checkpoint": str(checkpoint),
        "step": nets.step,
        "data": {
            "path": str(data_path),
            "reference_split": cfg.reference_split,
            "reference_fingerprint": data.reference_fingerprint,
            "source_split": cfg.source_split,
            "sources": len(data.sources),
            "products": list(data.products),
            "defects": list(data.defects),
        },
        "feature_extractor": extractor.as_dict(),
        "metrics": {k: _finite(v) for k, v in metrics.items()},
        "tags": tags,
        "fidelity": fidelity,
        "lpips": {**asdict(lpips), "label": lpips.label}
        if isinstance(lpips, LpipsSpec)
        else {"status": lpips},
        "diversity": diversity,
        "features": features.summary() if features is not None else None,
        "disentanglement": disentanglement,
        "throughput": {
            "generated_images": sets.generated_images,
            "generation_s": sets.generation_s,
            "generated_images_per_s": _finite(sets.images_per_s),
            "device": str(device),
        },
        "grids": grids,
        "evaluation_config": cfg.model_dump(mode="json"),
        "wall_s": time.perf_counter() - started,
    }
    output = write_evaluation(out_dir, report, metrics, tags, features)
    log.info(
        "evaluation of %s (step %d) written to %s in %.1f s",
        checkpoint,
        nets.step,
        output.report_path,
        report["wall_s"],
    )
    return output
