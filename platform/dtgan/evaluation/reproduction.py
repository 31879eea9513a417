"""The summary of a reproduction: several run folders (variant x seed) -> one table, one curve figure.

Each run folder holds ``evaluation/curve.json`` (``dtgan evaluate RUN --all-checkpoints``; :func:`read_run`) or
one checkpoint's ``evaluation/step_XXXXXXXX/evaluation.json`` (``dtgan evaluate RUN``; :func:`read_evaluation`),
and optionally ``downstream/downstream.json`` (``dtgan downstream RUN``). The summary gives, per variant, the mean and the
sample standard deviation over seeds of every metric at the last checkpoint and at step 0 (the same networks
untrained), the reproduction targets with how many seeds meet them, and the seeds behind every number.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dtgan import keys
from dtgan.errors import DataError
from dtgan.evaluation.curve import CURVE_FILE
from dtgan.evaluation.inputs import EVALUATION_DIR, evaluation_folder
from dtgan.evaluation.report import REPORT_FILE as EVALUATION_FILE
from dtgan.utils.atomic import atomic_path, write_text_atomic

DOWNSTREAM_FILE = "downstream.json"

# (label, metric key, comparison, threshold): the CPU preset's targets for step (g); None = relative
# to another figure, computed in :func:`target_checks`.
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("identity SSIM >= 0.6", keys.EVAL_IDENTITY_SSIM, ">=", 0.6),
    ("identity PSNR >= 25 dB", keys.EVAL_IDENTITY_PSNR, ">=", 25.0),
    # measured against the generator's own reconstruction: where the defect was painted, not what it fails to
    # reproduce anyway (a perfect painter with a 23 dB residual scores 0.26 against the source)
    ("paint locality >= 0.5", keys.EVAL_PAINT_LOCALITY, ">=", 0.5),
    ("paint background PSNR >= 25 dB", keys.EVAL_PAINT_BG_PSNR, ">=", 25.0),
)

TABLE_METRICS = (
    keys.fid_key("mix"),
    keys.kid_key("mix"),
    keys.EVAL_IDENTITY_SSIM,
    keys.EVAL_IDENTITY_PSNR,
    keys.EVAL_TRANSFER_LOCALITY,
    keys.EVAL_TRANSFER_BG_PSNR,
    keys.EVAL_PAINT_LOCALITY,
    keys.EVAL_PAINT_BG_PSNR,
    keys.EVAL_REMOVAL_PSNR,
    keys.EVAL_REMOVAL_PSNR_DO_NOTHING,
    keys.EVAL_INPUT_DEPENDENCE,
    keys.EVAL_SELF_RECON_SSIM,
    keys.EVAL_SELF_RECON_PSNR,
    keys.defect_recall_key("mix"),
)


@dataclass(frozen=True)
class RunRecord:
    """One run folder's curve (step -> metrics) and downstream metrics."""

    variant: str
    seed: int
    run_dir: str
    points: dict[int, dict[str, float]]
    downstream: dict[str, float]
    extractor: str

    @property
    def final_step(self) -> int:
        return max(self.points)

    @property
    def final(self) -> dict[str, float]:
        return self.points[self.final_step]

    @property
    def initial(self) -> dict[str, float] | None:
        return self.points.get(0)


def read_run(run_dir: str | Path, variant: str, seed: int) -> RunRecord:
    """A run folder's curve.json (required) and downstream.json (optional)."""
    run_dir = Path(run_dir)
    curve_path = run_dir / EVALUATION_DIR / CURVE_FILE
    if not curve_path.is_file():
        raise DataError(
            f"{curve_path}: no learning curve; run `dtgan evaluate {run_dir} --all-checkpoints` first"
        )
    curve = json.loads(curve_path.read_text())
    points = {int(p["step"]): {k: float(v) for k, v in p["metrics"].items()} for p in curve["points"]}
    if not points:
        raise DataError(f"{curve_path}: the curve has no points; evaluate the run's checkpoints again")
    return RunRecord(
        variant, seed, str(run_dir), points, _downstream_metrics(run_dir), _extractor_label(curve)
    )


def read_evaluation(run_dir: str | Path, variant: str, seed: int, step: int) -> RunRecord:
    """One checkpoint's evaluation.json (``dtgan evaluate RUN``, required) and the run's downstream.json
    (optional), as a record of one point: enough for the table, without the cost of a whole curve."""
    run_dir = Path(run_dir)
    path = evaluation_folder(run_dir, step) / EVALUATION_FILE
    if not path.is_file():
        raise DataError(f"{path}: no evaluation of step {step}; run `dtgan evaluate {run_dir}` first")
    evaluation = json.loads(path.read_text())
    metrics = {k: float(v) for k, v in evaluation["metrics"].items() if isinstance(v, int | float)}
    return RunRecord(
        variant,
        seed,
        str(run_dir),
        {step: metrics},
        _downstream_metrics(run_dir),
        _extractor_label(evaluation),
    )


def _downstream_metrics(run_dir: Path) -> dict[str, float]:
    path = run_dir / "downstream" / DOWNSTREAM_FILE
    if not path.is_file():
        return {}
    return {k: float(v) for k, v in json.loads(path.read_text()).get("metrics", {}).items()}


def _extractor_label(payload: dict) -> str:
    """'extractor@weights' of a curve.json or evaluation.json, with the validity ladder's verdict when known."""
    tags = payload.get("tags", {})
    label = f"{tags.get(keys.TAG_FID_EXTRACTOR, '?')}@{tags.get(keys.TAG_FID_WEIGHTS, '?')}"
    verdict = tags.get(keys.TAG_LADDER_VERDICT)
    return f"{label} (validity ladder: {verdict})" if verdict else label


def mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None with one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def format_mean_sd(values: Sequence[float], digits: int = 3) -> str:
    if not values:
        return "–"
    mean, sd = mean_sd(values)
    text = f"{mean:.{digits}g}"
    return text if sd is None else f"{text} ± {sd:.2g}"


def target_checks(record: RunRecord) -> dict[str, bool | None]:
    """Which targets one run meets at its last checkpoint (missing metrics count as not met; None: the run has no
    step 0 to compare with)."""
    final, checks = record.final, {}
    for label, key, _, threshold in TARGETS:
        checks[label] = key in final and final[key] >= threshold
    removal, bar = final.get(keys.EVAL_REMOVAL_PSNR), final.get(keys.EVAL_REMOVAL_PSNR_DO_NOTHING)
    checks["removal PSNR >= do-nothing + 1 dB"] = (
        removal is not None and bar is not None and removal >= bar + 1.0
    )
    initial = record.initial
    fid = keys.fid_key("mix")
    checks["FID-mix <= half of step 0's"] = (
        None
        if initial is None
        else (fid in initial and fid in record.final and record.final[fid] <= 0.5 * initial[fid])
    )
    return checks


def summarise(records: Sequence[RunRecord]) -> dict:
    """Per variant: seeds, final step, mean/sd of every metric at the end and at step 0, targets met."""
    variants: dict[str, list[RunRecord]] = {}
    for record in records:
        variants.setdefault(record.variant, []).append(record)
    out = {"extractors": sorted({r.extractor for r in records}), "variants": {}}
    for variant, runs in variants.items():
        metrics_final = sorted({k for r in runs for k in r.final})
        entry = {
            "seeds": [r.seed for r in runs],
            "final_steps": [r.final_step for r in runs],
            "run_dirs": [r.run_dir for r in runs],
            "final": {k: [r.final[k] for r in runs if k in r.final] for k in metrics_final},
            "initial": {
                k: [r.initial[k] for r in runs if r.initial and k in r.initial] for k in metrics_final
            },
            "downstream": {
                k: [r.downstream[k] for r in runs if k in r.downstream]
                for k in sorted({k for r in runs for k in r.downstream})
            },
            "targets_met": {},
        }
        for run in runs:
            for label, met in target_checks(run).items():
                if met is None:
                    continue
                entry["targets_met"].setdefault(label, 0)
                entry["targets_met"][label] += int(met)
        out["variants"][variant] = entry
    return out


def _short(key: str) -> str:
    return key.removeprefix(keys.EVAL_PREFIX).removeprefix(keys.DOWNSTREAM_PREFIX)


def summary_markdown(summary: dict) -> str:
    """The summary as Markdown: final and step-0 values (mean ± sd over seeds; step 0 where any run has it),
    downstream errors, targets."""
    variants = summary["variants"]
    names = list(variants)
    with_initial = any(values for v in names for values in variants[v]["initial"].values())
    columns = [("final", v) for v in names]
    if with_initial:
        columns = [(which, v) for v in names for which in ("final", "initial")]
    lines = [
        f"Features (extractor@weights): {', '.join(summary['extractors'])}. Values are mean ± sample sd over the seeds listed"
        + ("; step 0 is the same networks before training." if with_initial else "."),
        "",
        "| metric | "
        + " | ".join(f"({v}) {'final' if which == 'final' else 'step 0'}" for which, v in columns)
        + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key in TABLE_METRICS:
        cells = [format_mean_sd(variants[v][which].get(key, [])) for which, v in columns]
        lines.append(f"| {_short(key)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| | " + " | ".join(f"({v})" for v in names) + " |",
        "|---|" + "---|" * len(names),
        "| seeds | " + " | ".join(", ".join(map(str, variants[v]["seeds"])) for v in names) + " |",
        "| steps | "
        + " | ".join(", ".join(map(str, sorted(set(variants[v]["final_steps"])))) for v in names)
        + " |",
    ]
    downstream_keys = sorted({k for v in names for k in variants[v]["downstream"] if k.endswith("_mean")})
    for key in downstream_keys:
        lines.append(
            f"| {_short(key)} (%) | "
            + " | ".join(format_mean_sd(variants[v]["downstream"].get(key, [])) for v in names)
            + " |"
        )
    for label in next(iter(variants.values()))["targets_met"] if variants else []:
        lines.append(
            f"| target: {label} | "
            + " | ".join(
                f"{variants[v]['targets_met'].get(label, 0)} of {len(variants[v]['seeds'])} seeds"
                for v in names
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def curves_figure(
    records: Sequence[RunRecord],
    metrics: Sequence[str] = (
        keys.fid_key("mix"),
        keys.EVAL_IDENTITY_SSIM,
        keys.EVAL_IDENTITY_PSNR,
        keys.EVAL_TRANSFER_LOCALITY,
        keys.EVAL_INPUT_DEPENDENCE,
        keys.EVAL_SELF_RECON_SSIM,
    ),
):
    """One panel per metric, one line per run (colour = variant), against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colours = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, key in zip(axes.flat, metrics, strict=False):
        for record in records:
            colour = colours.setdefault(record.variant, palette[len(colours) % len(palette)])
            steps = sorted(s for s, m in record.points.items() if key in m)
            axis.plot(
                steps,
                [record.points[s][key] for s in steps],
                marker="o",
                ms=3,
                color=colour,
                label=f"({record.variant}) seed {record.seed}",
            )
        axis.set_title(_short(key))
        axis.set_xlabel("step")
        if (parsed := keys.parse_eval_key(key)) is not None and parsed[0] in keys.FIDELITY_METRICS:
            axis.set_yscale("log")
    for axis in list(axes.flat)[len(metrics) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def write_summary(records: Sequence[RunRecord], out_dir: str | Path) -> dict[str, Path]:
    """summary.json, summary.md and curves.png under ``out_dir`` (each written to a temp name, then renamed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(records)
    paths = {
        "json": write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n"),
        "markdown": write_text_atomic(out_dir / "summary.md", summary_markdown(summary)),
    }
    with atomic_path(out_dir / "curves.png") as tmp:
        curves_figure(records).savefig(tmp, format="png", dpi=110)
    paths["curves"] = out_dir / "curves.png"
    return paths
