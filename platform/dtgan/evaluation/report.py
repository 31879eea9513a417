"""The evaluation report: ``evaluation.json`` assembled from the protocol's records (the GAN's and Crop&Paste's,
with one ``data`` block), written atomically as strict JSON, and the metrics and tags the caller tracks."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.defect_classifier import quality_metrics
from dtgan.evaluation.defect_recall import recall_metrics
from dtgan.evaluation.diversity import COMPUTED
from dtgan.evaluation.extractors import ExtractorSpec
from dtgan.evaluation.feature_files import FeatureWriter
from dtgan.evaluation.ic_lpips import LpipsSpec
from dtgan.evaluation.inputs import CheckpointInputs, DataInputs
from dtgan.evaluation.ladder import ladder_metrics, ladder_tag
from dtgan.evaluation.protocol import SyntheticSets
from dtgan.utils.atomic import write_text_atomic

REPORT_FILE = "evaluation.json"


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


def data_block(inputs: DataInputs, cfg: EvaluationConfig, **counts: int) -> dict:
    """The report's ``data`` entry, one for every method: the data set, the splits, the reference fingerprint and
    the labels the numbers were computed on; a method's own ``counts`` follow the number of sources."""
    data = inputs.data
    return {
        "path": str(inputs.data_path),
        "reference_split": cfg.reference_split,
        "reference_fingerprint": data.reference_fingerprint,
        "source_split": cfg.source_split,
        "sources": len(data.sources),
        **counts,
        "products": list(data.products),
        "defects": list(data.defects),
    }


def fidelity_metrics(fidelity: list[dict]) -> dict[str, float]:
    """FID and KID (mean) of every fidelity record under its key."""
    metrics: dict[str, float] = {}
    for record in fidelity:
        metrics[record["fid_key"]] = record["fid"]
        metrics[record["kid_key"]] = record["kid_mean"]
    return metrics


def extractor_tags(extractor: ExtractorSpec) -> dict[str, str]:
    """``fid_extractor`` and ``fid_weights``: which numbers may share a column."""
    return {keys.TAG_FID_EXTRACTOR: extractor.name, keys.TAG_FID_WEIGHTS: extractor.weights_fingerprint}


def lpips_tags(lpips: LpipsSpec | str) -> dict[str, str]:
    """``lpips_backbone`` (trunk/weights fingerprint) when IC-LPIPS was computed, and ``ic_lpips_status``."""
    if isinstance(lpips, LpipsSpec):
        return {keys.TAG_LPIPS_BACKBONE: lpips.label, keys.TAG_IC_LPIPS_STATUS: COMPUTED}
    return {keys.TAG_IC_LPIPS_STATUS: lpips}


def write_checkpoint_report(
    inputs: CheckpointInputs,
    cfg: EvaluationConfig,
    extractor: ExtractorSpec,
    lpips: LpipsSpec | str,
    sets: SyntheticSets,
    features: FeatureWriter | None,
    fidelity: list[dict],
    diversity: list[dict],
    disentanglement: dict[str, dict],
    grids: list[str],
    wall_s: float,
    ladder: dict | None = None,
    defect_classifier: dict | None = None,
    defect_recall: dict | None = None,
) -> EvaluationOutput:
    """A checkpoint's ``evaluation.json``: FID/KID, IS/IC-LPIPS, disentanglement, throughput, grids and the
    validity ladder's verdict (:mod:`dtgan.evaluation.ladder`)."""
    metrics = fidelity_metrics(fidelity)
    for record in diversity:
        metrics[record["is_key"]] = record["is_mean"]
        if record["ic_lpips"] is not None:
            metrics[record["ic_lpips_key"]] = record["ic_lpips"]
    for scores in disentanglement.values():
        metrics.update({k: v for k, v in scores.items() if k.startswith(keys.EVAL_PREFIX)})
    metrics[keys.EVAL_GENERATED_IMAGES_PER_S] = sets.images_per_s
    metrics.update(ladder_metrics(ladder))
    metrics.update(quality_metrics(defect_classifier))
    metrics.update(recall_metrics(defect_recall))
    tags = {**extractor_tags(extractor), **lpips_tags(lpips), **ladder_tag(ladder)}
    report = {
        "checkpoint": str(inputs.checkpoint),
        "step": inputs.nets.step,
        "data": data_block(inputs, cfg),
        "feature_extractor": extractor.as_dict(),
        "validity_ladder": ladder,
        "defect_classifier": defect_classifier,
        "defect_recall": defect_recall,
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
            "device": str(inputs.device),
        },
        "grids": grids,
        "evaluation_config": cfg.model_dump(mode="json"),
        "wall_s": wall_s,
    }
    return write_evaluation(inputs.out_dir, report, metrics, tags, features)
