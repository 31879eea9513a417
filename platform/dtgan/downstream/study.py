"""The augmentation study: arms x sizes x scopes x defect sources x seeds, each a pure job; mean +- std per cell.

A job is a function of a small picklable :class:`JobSpec` (the cell, the seed, the config section as a dict,
and the path of the prepared study data), so any executor can run it: the default runs the jobs one after
another in this process; the Ray adapter in ``dtgan.search`` maps them as ``ray.remote`` tasks, one GPU each.
"""

from __future__ import annotations

import json
import logging
import socket
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.downstream import DownstreamConfig
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.downstream.arms import GUIDED_ARMS, Cell, build_training_set, in_scope, scope_product_ids
from dtgan.downstream.classifier import build_classifier
from dtgan.downstream.preflight import weights_label
from dtgan.downstream.recipe import fit_classifier
from dtgan.downstream.study_data import StudyData, load_study_data
from dtgan.errors import ConfigError
from dtgan.training.environment import resolve_device
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

MapFn = Callable[[Callable[["JobSpec"], dict], list["JobSpec"]], Iterable[dict]]


@dataclass(frozen=True)
class JobSpec:
    """Everything one classifier run needs; picklable and small (no tensors)."""

    cell: Cell
    seed: int
    config: dict  # DownstreamConfig.model_dump(mode="json")
    study_data_path: str


def plan_cells(cfg: DownstreamConfig) -> list[Cell]:
    """Every study cell; defect sources other than 'all' only apply to the reference and mix arms."""
    cells = []
    for size in cfg.normal_images_per_product:
        for product in cfg.products:
            for arm in cfg.arms:
                sources = cfg.defect_sources if arm in GUIDED_ARMS else (keys.SCOPE_ALL,)
                cells += [Cell(arm, size, product, source) for source in sources]
    return cells


def plan_jobs(cfg: DownstreamConfig, study_data_path: str | Path) -> list[JobSpec]:
    if cfg.protocol != "study":
        raise ConfigError(
            f"downstream.protocol={cfg.protocol} is not the augmentation study; run it with "
            "`dtgan downstream CHECKPOINT_OR_RUN -c PRESET` (or set downstream.protocol=study)"
        )
    config = cfg.model_dump(mode="json")
    seeds = [cfg.seed + i for i in range(cfg.num_seeds)]
    return [JobSpec(cell, seed, config, str(study_data_path)) for cell in plan_cells(cfg) for seed in seeds]


def run_job(spec: JobSpec) -> dict:
    """Train and test one classifier; returns a JSON-able result dict."""
    cfg = DownstreamConfig.model_validate(spec.config)
    data = load_study_data(spec.study_data_path)
    train = build_training_set(data, spec.cell, spec.seed, cfg.synthetic_share)
    product_ids = scope_product_ids(data, spec.cell.product)
    val, test = in_scope(data.val, product_ids), in_scope(data.test, product_ids)
    torch.manual_seed(spec.seed)  # classifier head and domain-head init
    model, pretrained = build_classifier(
        cfg, num_classes=len(data.defects), with_domain_head=spec.cell.synthetic
    )
    device = str(resolve_device(cfg.device, "downstream.device"))  # a str in the JSON-able result
    t0 = time.perf_counter()
    fit = fit_classifier(model, train, val, test, cfg, spec.seed, device)
    fit["test_cells"] = named_cells(data, fit["test_cells"])
    result = {
        "cell": asdict(spec.cell),
        "label": spec.cell.label(),
        "seed": spec.seed,
        "backbone": cfg.backbone,
        "pretrained": pretrained,
        "device": device,
        "host": socket.gethostname(),
        "train_class_counts": train.class_counts(data.defects),
        "train_synthetic_images": train.num_synthetic,
        "val_images": len(val),
        "test_images": len(test),
        "wall_seconds": time.perf_counter() - t0,
        **fit,
    }
    log.info(
        "%s seed %d: test error %.2f%% (val %.2f%%, best epoch %d)",
        result["label"],
        spec.seed,
        fit["test_error_pct"],
        fit["val_error_pct"],
        fit["best_epoch"],
    )
    return result


def named_cells(data: StudyData, counts: dict[str, list[int]]) -> dict[str, dict]:
    """'p,k' -> [images, wrong] as 'product/class' -> {images, wrong, error_pct, unseen}; ``unseen`` marks a
    defect cell without one real training defect (only synthetic images can teach it)."""
    out = {}
    for code, (images, wrong) in counts.items():
        p, k = (int(i) for i in code.split(","))
        real = int(((data.train_defect.p == p) & (data.train_defect.y == k)).sum())
        out[f"{data.products[p]}/{data.defects[k]}"] = {
            "images": images,
            "wrong": wrong,
            "error_pct": 100.0 * wrong / max(images, 1),
            "unseen": k != NORMAL_INDEX and real == 0,
        }
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), as the paper's ``mean +- std over five runs``."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def metric_key(cell: Cell, backbone: str, with_size: bool, stat: str) -> str:
    """``downstream/error_{arm}_{backbone}_{stat}``; cross-domain source, scope and (in multi-size studies)
    size qualify the arm part, e.g. ``downstream/error_reference_vA_B_n4000_resnet50_mean``."""
    return keys.downstream_key(cell.label(with_size=with_size), backbone, stat)


def summarize(results: list[dict], backbone: str, multi_size: bool) -> tuple[list[dict], dict[str, float]]:
    """Rows of mean +- std test error per cell (in planning order) and the flat metrics with _mean/_std."""
    by_cell: dict[Cell, list[dict]] = {}
    for r in results:
        by_cell.setdefault(Cell(**r["cell"]), []).append(r)
    rows, metrics = [], {}
    for cell, runs in by_cell.items():
        errors = [r["test_error_pct"] for r in runs]
        mean, std = _mean_std(errors)
        val_mean, val_std = _mean_std([r["val_error_pct"] for r in runs])
        rows.append(
            {
                **asdict(cell),
                "label": cell.label(),
                "seeds": [r["seed"] for r in runs],
                "test_error_pct_mean": mean,
                "test_error_pct_std": std,
                "val_error_pct_mean": val_mean,
                "val_error_pct_std": val_std,
                "pretrained": sorted({r["pretrained"] for r in runs}),
            }
        )
        metrics[metric_key(cell, backbone, multi_size, "mean")] = mean
        metrics[metric_key(cell, backbone, multi_size, "std")] = std
    return rows, metrics


def markdown_table(rows: list[dict], backbone: str) -> str:
    """One line per cell: test error % mean +- std over seeds, as in the paper's Tables 2, 3, 4 and 8; the
    heading says the initial weights ('ImageNet' as in the paper, or 'from scratch')."""
    weights = " / ".join(sorted({weights_label(s) for r in rows for s in r.get("pretrained", [])})) or "?"
    lines = [
        f"| arm | normals/product | classifier products | defects from | seeds | test error % ({backbone}, "
        f"{weights}) | val error % |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['normal_images_per_product']} | {r['product']} | {r['defect_source']} | "
            f"{len(r['seeds'])} | {r['test_error_pct_mean']:.2f} ± {r['test_error_pct_std']:.2f} | "
            f"{r['val_error_pct_mean']:.2f} ± {r['val_error_pct_std']:.2f} |"
        )
    return "\n".join(lines)


def run_study(
    cfg: DownstreamConfig,
    study_data_path: str | Path,
    map_fn: MapFn = map,
    out_path: str | Path | None = None,
) -> dict:
    """Run every job through ``map_fn(run_job, specs)`` and aggregate; write ``out_path`` atomically if given."""
    specs = plan_jobs(cfg, study_data_path)
    log.info(
        "downstream study: %d cells x %d seeds = %d classifier runs (%s)",
        len(specs) // cfg.num_seeds,
        cfg.num_seeds,
        len(specs),
        cfg.backbone,
    )
    t0 = time.perf_counter()
    results = list(map_fn(run_job, specs))
    multi_size = len(cfg.normal_images_per_product) > 1
    rows, metrics = summarize(results, cfg.backbone, multi_size)
    payload = {
        "backbone": cfg.backbone,
        "config": cfg.model_dump(mode="json"),
        "study_data": str(study_data_path),
        "wall_seconds": time.perf_counter() - t0,
        "metrics": metrics,
        "rows": rows,
        "jobs": results,
    }
    if out_path is not None:
        write_text_atomic(out_path, json.dumps(payload, indent=2, allow_nan=True) + "\n")
    return payload
