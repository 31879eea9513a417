"""Learning curves: the evaluation of every checkpoint of a run, as ``curve.json`` and ``curve.png``.

A curve shows whether a run learned: FID/KID-mix against the step, starting from the initialised networks
(step 0, written with ``train.checkpoint_at_start``), beside the metrics that tell a generator that ignores
its input from one that keeps it (input dependence, identity and self-reconstruction SSIM, transfer locality).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from matplotlib.figure import Figure

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.errors import CheckpointError
from dtgan.evaluation.evaluate import evaluate
from dtgan.evaluation.inputs import EVALUATION_DIR
from dtgan.evaluation.report import json_safe
from dtgan.training.checkpoint import list_checkpoints
from dtgan.utils.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

CURVE_FILE = "curve.json"
CURVE_PLOT = "curve.png"
# (metric key, axis label, lower is better) per panel of the plot.
CURVE_PANELS = (
    (keys.fid_key("mix"), "FID mix", True),
    (keys.kid_key("mix"), "KID mix", True),
    (keys.EVAL_INPUT_DEPENDENCE, "input dependence", False),
    (keys.EVAL_IDENTITY_SSIM, "identity SSIM", False),
    (keys.EVAL_SELF_RECON_SSIM, "self-reconstruction SSIM", False),
    (keys.EVAL_TRANSFER_LOCALITY, "transfer locality", False),
)


def evaluate_curve(run_dir: str | Path, cfg: EvaluationConfig, data_path: str | None = None) -> Path:
    """Evaluate every checkpoint of ``run_dir`` (oldest first, each into its own ``evaluation/step_X``) and write
    ``<run>/evaluation/curve.json`` and ``curve.png``. Returns the JSON path."""
    run_dir = Path(run_dir)
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise CheckpointError(f"{run_dir}: no checkpoints/step_*.pt in this run folder; train first")
    points = []
    tags: dict[str, str] = {}
    for checkpoint in checkpoints:
        result = evaluate(checkpoint, cfg, data_path=data_path)
        tags = result.tags
        points.append({"step": result.report["step"], "metrics": json_safe(result.metrics)})
    out_dir = run_dir / EVALUATION_DIR
    curve = {
        "run_dir": str(run_dir),
        "tags": tags,
        "evaluation_config": cfg.model_dump(mode="json"),
        "points": points,
    }
    path = write_text_atomic(out_dir / CURVE_FILE, json.dumps(curve, indent=2, allow_nan=False) + "\n")
    figure = curve_figure(points, title=f"{run_dir.name} ({tags.get(keys.TAG_FID_EXTRACTOR, '?')} features)")
    with atomic_path(out_dir / CURVE_PLOT) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    log.info("learning curve of %d checkpoints written to %s", len(points), path)
    return path


def curve_figure(points: list[dict], title: str) -> Figure:
    """One panel per metric of :data:`CURVE_PANELS` against the training step."""
    figure = Figure(figsize=(12, 6))
    steps = [p["step"] for p in points]
    for index, (key, label, lower_better) in enumerate(CURVE_PANELS):
        axes = figure.add_subplot(2, 3, index + 1)
        values = [p["metrics"].get(key) for p in points]
        shown = [(s, v) for s, v in zip(steps, values) if v is not None]
        if shown:
            axes.plot(*zip(*shown), marker="o")
        axes.set_title(f"{label} ({'lower' if lower_better else 'higher'} is better)", fontsize="small")
        axes.set_xlabel("training step")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
