"""This platform's row(s) in the columns the later defect generators publish on MVTec AD: IS, IC-LPIPS and KID, per
category and averaged, beside the published rows (labelled as quoted, never re-measured). Prints JSON (the markdown
tables are in its ``markdown`` entry; ``--markdown`` prints only those).

    python benchmarks/field_table.py --experiment ablation-mvtec_textures              # MLflow ($MLFLOW_TRACKING_URI
    python benchmarks/field_table.py --experiment E --tracking-uri sqlite:///mlflow.db  #  or ./mlflow.db)
    python benchmarks/field_table.py --experiment ablation-mvtec_carpet --experiment ablation-mvtec_leather ...
    python benchmarks/field_table.py --evaluation RUN/evaluation/final/evaluation.json --markdown
    python benchmarks/field_table.py --evaluation E.json --classification RUN/field_classification.json --markdown

The platform's figures are the metrics ``eval/is_{guidance}[_{product}]``, ``eval/ic_lpips_{guidance}[_{product}]``
and ``eval/kid_{guidance}[_{product}]`` of the finished runs (MLflow: the children of the experiment's latest parent
run, or ``--parent-run``; one row per ``variant`` tag, the mean over its seeds) or of ``evaluation.json`` files (one
row each). A metric a run does not have is printed as "not computed", never estimated. The defect-type accuracy
column (``downstream/field_accuracy[_{product}]``, the field's classification protocol) comes from the
``field_classification.json`` of ``dtgan downstream RUN -c field_classification`` (``--classification``, one row each)
or from runs that logged those keys.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("DTGAN_PLATFORM", str(ROOT / "platform")))

from dtgan import keys  # noqa: E402

METRICS = ("is", "ic_lpips", "kid", "accuracy")
HEADINGS = {"is": "IS ↑", "ic_lpips": "IC-LPIPS ↑", "kid": "KID ↓", "accuracy": "defect-type acc. % ↑"}
DIGITS = {"is": 2, "ic_lpips": 3, "kid": 3, "accuracy": 1}
AVERAGE = "average"
NOT_COMPUTED = "not computed"
NOT_QUOTED = "not quoted"
INCEPTION = "inception-v3-compat"
VARIANT_NAMES = {"a": "StarGAN v2 (a)", "g": "DT-GAN (g)"}


def _accuracy_key(guidance: keys.Guidance, product: str | None = None) -> str:
    """The classification protocol's accuracy: one per classifier run, whatever guidance the table shows."""
    return keys.field_accuracy_key(product)


KEY_BUILDERS = {
    "is": keys.is_key,
    "ic_lpips": keys.ic_lpips_key,
    "kid": keys.kid_key,
    "accuracy": _accuracy_key,
}


@dataclass(frozen=True)
class Published:
    """A published row: MVTec AD averages as the paper reports them (quoted, not measured here)."""

    method: str
    paper: str
    average: Mapping[str, float]


# Averages over MVTec AD's 15 categories as quoted from the papers' comparison tables.
PUBLISHED = (
    Published(
        "SeaS",
        "SeaS: Few-shot Industrial Anomaly Image Generation with Separation and Sharing Fine-tuning (ICCV 2025)",
        {"is": 1.88, "ic_lpips": 0.34, "kid": 0.04},
    ),
    Published(
        "AnomalyDiffusion",
        "AnomalyDiffusion: Few-Shot Anomaly Image Generation with Diffusion Model (Hu et al., AAAI 2024)",
        {"is": 1.80, "ic_lpips": 0.32, "accuracy": 66.1},
    ),
    Published(
        "DFMGAN",
        "Few-Shot Defect Image Generation via Defect-Aware Feature Manipulation (Duan et al., AAAI 2023)",
        {"is": 1.72, "ic_lpips": 0.20, "accuracy": 49.6},
    ),
    Published(
        "Crop&Paste",
        "the cut-out-and-paste baseline, as run in the comparison tables of AnomalyDiffusion and SeaS",
        {"is": 1.51, "ic_lpips": 0.14, "accuracy": 56.2},
    ),
    # Defect-type classification accuracy only (the field's protocol: a ResNet-34 per category trained on the
    # generated anomalies, tested on the real ones), quoted beside the three above.
    Published(
        "MAGIC",
        "MAGIC: mask-guided diffusion inpainting for few-shot anomaly generation (its defect-type classification "
        "accuracy, as quoted)",
        {"accuracy": 78.1},
    ),
)


class FieldTableError(Exception):
    """Bad input: one line naming the file, store or experiment and what to do."""


@dataclass
class PlatformRow:
    """One row of this platform: per-seed values of every key it read, and the tags the values depend on."""

    label: str
    source: str
    runs: list[str] = field(default_factory=list)
    metrics: list[Mapping[str, float | None]] = field(default_factory=list)
    tags: dict[str, set[str]] = field(default_factory=dict)

    def add(self, run: str, metrics: Mapping[str, float | None], tags: Mapping[str, object]) -> None:
        self.runs.append(run)
        self.metrics.append(metrics)
        for name in (
            keys.TAG_FID_EXTRACTOR,
            keys.TAG_LPIPS_BACKBONE,
            keys.TAG_IC_LPIPS_STATUS,
            keys.TAG_PRESET,
            keys.TAG_LADDER_VERDICT,
        ):
            value = tags.get(name)
            if isinstance(value, str) and value:
                self.tags.setdefault(name, set()).add(value)

    def values(self, key: str) -> list[float]:
        return [float(m[key]) for m in self.metrics if _finite(m.get(key))]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def categories_in(metrics: Iterable[str], guidance: keys.Guidance) -> list[str]:
    """The products named in per-product keys ``eval/{is,ic_lpips,kid}_{guidance}_{product}`` (docs/model.md#a14's per-defect
    ``.{defect}`` keys excluded)."""
    found: set[str] = set()
    for build in KEY_BUILDERS.values():
        prefix = build(guidance) + "_"
        found |= {k[len(prefix) :] for k in metrics if k.startswith(prefix) and "." not in k[len(prefix) :]}
    return sorted(found)


def cell(values: list[float]) -> dict:
    """A platform cell: the mean over seeds (and their count), or None = not computed."""
    if not values:
        return {"value": None, "seeds": 0}
    return {"value": statistics.fmean(values), "seeds": len(values)}


def platform_cells(row: PlatformRow, categories: list[str], guidance: keys.Guidance) -> dict[str, dict]:
    """scope (category, ``average``, ``pooled``) -> metric -> cell. ``average`` is the mean of the per-category
    means, as the papers average their categories (not computed when a category lacks the metric); ``pooled``
    is the all-products key (one score over the pooled set)."""
    out: dict[str, dict] = {c: {} for c in (*categories, AVERAGE, "pooled")}
    for metric, build in KEY_BUILDERS.items():
        for category in categories:
            out[category][metric] = cell(row.values(build(guidance, category)))
        per_category = [out[c][metric]["value"] for c in categories]
        missing = [c for c, v in zip(categories, per_category) if v is None]
        if categories and not missing:
            out[AVERAGE][metric] = {"value": statistics.fmean(per_category), "over": list(categories)}
        else:
            out[AVERAGE][metric] = {"value": None, "missing": missing or ["no category"]}
        out["pooled"][metric] = cell(row.values(build(guidance)))
    return out


def _variant_label(variant: str | None, presets: set[str] | None) -> str:
    name = VARIANT_NAMES.get(variant or "", f"variant {variant}" if variant else "run")
    return f"this platform: {name}" + (f", {'/'.join(sorted(presets))}" if presets else "")


def rows_from_mlflow(
    experiments: list[str],
    tracking_uri: str | None,
    guidance: keys.Guidance,
    parent_run: str | None = None,
    variants: list[str] | None = None,
) -> list[PlatformRow]:
    """One row per ``variant`` of the finished child runs of each experiment's latest parent run (or
    ``parent_run``), merged over the experiments: per-category studies (mvtec_carpet, mvtec_leather, ...) give one
    row whose categories come from their own studies."""
    merged: dict[str, PlatformRow] = {}
    for experiment in experiments:
        for variant, row in _experiment_rows(
            experiment, tracking_uri, guidance, parent_run, variants
        ).items():
            into = merged.setdefault(variant, PlatformRow("", ""))
            into.runs += row.runs
            into.metrics += row.metrics
            for name, values in row.tags.items():
                into.tags.setdefault(name, set()).update(values)
    source = "MLflow experiment" + ("s " if len(experiments) > 1 else " ") + ", ".join(map(repr, experiments))
    for variant, row in merged.items():
        row.label = _variant_label(None if variant == "run" else variant, row.tags.get(keys.TAG_PRESET))
        row.source = source
    return [merged[k] for k in sorted(merged)]


def _experiment_rows(
    experiment: str,
    tracking_uri: str | None,
    guidance: keys.Guidance,
    parent_run: str | None,
    variants: list[str] | None,
) -> dict[str, PlatformRow]:
    from dtgan.errors import TrackingError
    from dtgan.tracking.mlflow.reading import search_experiment_runs

    try:
        runs = search_experiment_runs(experiment, tracking_uri)
    except TrackingError as exc:
        raise FieldTableError(str(exc)) from None
    parent_col = "tags.mlflow.parentRunId"
    if parent_run is not None:
        if parent_col not in runs or not (runs[parent_col] == parent_run).any():
            raise FieldTableError(f"experiment {experiment!r}: no child runs of parent run {parent_run!r}")
        runs = runs[runs[parent_col] == parent_run]
    elif parent_col in runs and runs[parent_col].notna().any():
        children = runs[runs[parent_col].notna()]
        latest = children.sort_values("start_time").iloc[-1][parent_col]
        runs = children[children[parent_col] == latest]
    runs = runs[runs["status"] == "FINISHED"] if "status" in runs else runs.iloc[0:0]
    prefixes = tuple(build(guidance) for build in KEY_BUILDERS.values())
    rows: dict[str, PlatformRow] = {}
    for _, run in runs.iterrows():
        metrics = {
            c.removeprefix("metrics."): run[c]
            for c in runs.columns
            if c.startswith("metrics.") and c.removeprefix("metrics.").startswith(prefixes)
        }
        if not any(_finite(v) for v in metrics.values()):
            continue
        tags = {c.removeprefix("tags."): run[c] for c in runs.columns if c.startswith("tags.")}
        variant = tags.get(keys.TAG_VARIANT) if isinstance(tags.get(keys.TAG_VARIANT), str) else None
        if variants and variant not in variants:
            continue
        key = variant or "run"
        if key not in rows:
            rows[key] = PlatformRow("", f"MLflow experiment {experiment!r}")
        rows[key].add(str(run["run_id"]), metrics, tags)
    if not rows:
        raise FieldTableError(
            f"experiment {experiment!r}: no finished run has a metric {' / '.join(p + '*' for p in prefixes)}"
            + (f" for variant(s) {', '.join(variants)}" if variants else "")
            + "; evaluate the runs first (dtgan evaluate, or a study with evaluation)"
        )
    return rows


def row_from_evaluation(path: Path) -> PlatformRow:
    """One row from an ``evaluation.json`` written by ``dtgan evaluate``."""
    try:
        report = json.loads(path.read_text())
    except OSError as exc:
        raise FieldTableError(f"{path}: cannot read it ({exc.strerror}); pass an evaluation.json") from None
    except json.JSONDecodeError as exc:
        raise FieldTableError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise FieldTableError(f"{path}: no 'metrics' mapping; expected an evaluation.json of dtgan evaluate")
    checkpoint = Path(str(report.get("checkpoint", path)))
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    step = report.get("step")
    label = f"this platform: {run_dir.name}" + (f" (step {step})" if step is not None else "")
    row = PlatformRow(label, str(path))
    row.add(str(path), report["metrics"], report.get("tags") or {})
    return row


def row_from_classification(path: Path) -> PlatformRow:
    """One row from a ``field_classification.json`` of ``dtgan downstream RUN -c field_classification``: its
    per-seed accuracies per category (the seeds' mean is the cell); the other columns are not computed there."""
    try:
        result = json.loads(path.read_text())
    except OSError as exc:
        raise FieldTableError(
            f"{path}: cannot read it ({exc.strerror}); pass a field_classification.json"
        ) from None
    except json.JSONDecodeError as exc:
        raise FieldTableError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(result, dict) or result.get("protocol") != "field_classification":
        raise FieldTableError(
            f"{path}: not a field_classification.json (protocol {result.get('protocol') if isinstance(result, dict) else None!r}); "
            "write one with dtgan downstream RUN -c field_classification"
        )
    per_seed = result.get("per_seed_metrics")
    if not isinstance(per_seed, list) or not all(isinstance(m, dict) for m in per_seed):
        raise FieldTableError(f"{path}: no 'per_seed_metrics' list; write it again with this dtgan")
    label = (
        f"this platform: defect-type classifier ({result.get('backbone')}, {result.get('trained_on')}, "
        f"{path.parent.name})"
    )
    row = PlatformRow(label, str(path))
    for number, metrics in enumerate(per_seed):
        row.add(f"{path}#seed{number}", metrics, {})
    return row


def _text(metric: str, value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.{DIGITS[metric]}f}"


def build_table(
    rows: list[PlatformRow], guidance: keys.Guidance, categories: list[str] | None = None
) -> dict:
    """The JSON result: categories, the platform's rows, the quoted rows, the notes and the markdown tables."""
    if categories is None:
        categories = sorted({c for row in rows for m in row.metrics for c in categories_in(m, guidance)})
    platform = []
    for row in rows:
        cells = platform_cells(row, categories, guidance)
        for scope in cells.values():
            for metric, c in scope.items():
                c["text"] = _text(metric, c["value"], NOT_COMPUTED)
        platform.append(
            {
                "label": row.label,
                "source": row.source,
                "runs": row.runs,
                "tags": {k: sorted(v) for k, v in row.tags.items()},
                "cells": cells,
                "keys": {m: KEY_BUILDERS[m](guidance, "<category>") for m in METRICS},
            }
        )
    published = [
        {
            "label": f"quoted: {p.method}",
            "method": p.method,
            "paper": p.paper,
            "scope": "MVTec AD average over its 15 categories, as published",
            "cells": {
                AVERAGE: {
                    m: {"value": p.average.get(m), "text": _text(m, p.average.get(m), NOT_QUOTED)}
                    for m in METRICS
                }
            },
        }
        for p in PUBLISHED
    ]
    result = {
        "benchmark": "field_table",
        "guidance": guidance,
        "categories": categories,
        "metrics": list(METRICS),
        "platform": platform,
        "published": published,
        "notes": notes(rows, categories, guidance),
    }
    result["markdown"] = markdown(result)
    return result


def notes(rows: list[PlatformRow], categories: list[str], guidance: keys.Guidance) -> list[str]:
    """What the columns do and do not share with the published rows."""
    extractors = sorted({e for row in rows for e in row.tags.get(keys.TAG_FID_EXTRACTOR, ())})
    backbones = sorted({b for row in rows for b in row.tags.get(keys.TAG_LPIPS_BACKBONE, ())})
    statuses = sorted({s for row in rows for s in row.tags.get(keys.TAG_IC_LPIPS_STATUS, ())})
    out = [
        "Quoted rows: the papers' own MVTec AD averages over all 15 categories (objects and textures, in colour, "
        "at the papers' image sizes), not re-measured here; per-category figures are not quoted.",
        f"This platform: {guidance}-guided synthesis; 'average' is the mean of the per-category values over "
        f"{', '.join(categories) or 'no category'} (not all 15 MVTec categories); MVTec is imported as grayscale.",
        "IS is computed from the FID extractor's logits: "
        + (", ".join(extractors) if extractors else "extractor not recorded")
        + (
            "; only inception-v3-compat gives the Inception Score the papers report"
            if any(e != INCEPTION for e in extractors) or not extractors
            else ""
        )
        + ".",
        "IC-LPIPS backbone: "
        + (", ".join(backbones) if backbones else "not recorded")
        + " (the papers differ: AlexNet in DFMGAN, VGG in SeaS).",
    ]
    if statuses:
        out.append("IC-LPIPS status: " + "; ".join(statuses))
    out.append(
        "Defect-type accuracy: the field's classification protocol (a classifier per category of its defect types, "
        "trained on generated anomalies, tested on the real test anomalies; the quoted rows' ResNet-34 figures are "
        "MVTec AD means over 15 categories, as quoted); this platform's rows name their backbone and whether the "
        "real third of the anomalies was added (papers differ)."
    )
    return [*ladder_notes(rows), *out]


def ladder_notes(rows: list[PlatformRow]) -> list[str]:
    """The loud line of every row whose evaluation failed the validity ladder (first among the notes)."""
    return [
        f"VALIDITY LADDER FAILED ({row.label}): {keys.LADDER_CANNOT_TELL}; its FID/KID decide nothing. "
        + "; ".join(sorted(v for v in row.tags[keys.TAG_LADDER_VERDICT] if v != "pass"))
        for row in rows
        if any(v.startswith("fail") for v in row.tags.get(keys.TAG_LADDER_VERDICT, ()))
    ]


def markdown(result: dict) -> str:
    heads = [HEADINGS[m] for m in METRICS]
    lines = [
        f"MVTec AD, {result['guidance']} guidance: average over categories",
        "",
        "| method | " + " | ".join(heads) + " | figures |",
        "|---|" + "---:|" * len(heads) + "---|",
    ]
    for row in result["platform"]:
        cells = row["cells"][AVERAGE]
        over = ", ".join(result["categories"]) or "no category"
        lines.append(
            f"| {row['label']} | "
            + " | ".join(cells[m]["text"] for m in METRICS)
            + f" | measured here, mean over {over} |"
        )
    for row in result["published"]:
        cells = row["cells"][AVERAGE]
        lines.append(
            f"| {row['label']} | " + " | ".join(cells[m]["text"] for m in METRICS) + f" | {row['paper']} |"
        )
    lines += ["", "Per category (this platform; the papers' per-category figures are not quoted here)", ""]
    lines += [
        "| method | category | " + " | ".join(heads) + " | seeds |",
        "|---|---|" + "---:|" * len(heads) + "---:|",
    ]
    for row in result["platform"]:
        for category in result["categories"]:
            cells = row["cells"][category]
            seeds = max(c["seeds"] for c in cells.values())
            lines.append(
                f"| {row['label']} | {category} | "
                + " | ".join(cells[m]["text"] for m in METRICS)
                + f" | {seeds} |"
            )
    lines += ["", *(f"- {n}" for n in result["notes"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--experiment",
        action="append",
        help="MLflow experiment of a study, e.g. ablation-mvtec_textures (repeatable: per-category studies "
        "ablation-mvtec_carpet, ablation-mvtec_leather, ... merge into one row per variant)",
    )
    source.add_argument(
        "--evaluation", type=Path, action="append", help="evaluation.json of dtgan evaluate (repeatable)"
    )
    parser.add_argument(
        "--classification",
        type=Path,
        action="append",
        default=None,
        help="field_classification.json of dtgan downstream RUN -c field_classification (repeatable): a row with "
        "the defect-type accuracy column",
    )
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default $MLFLOW_TRACKING_URI)")
    parser.add_argument("--parent-run", default=None, help="the study's parent run (default: the latest)")
    parser.add_argument("--variant", action="append", default=None, help="only these variants (repeatable)")
    parser.add_argument(
        "--guidance",
        choices=keys.GUIDANCES,
        default="latent",
        help="which synthesis set (default latent: like the field's methods, a defect drawn from noise)",
    )
    parser.add_argument(
        "--categories",
        default=None,
        help="comma-separated columns (default: the categories the metrics name)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the markdown tables instead of JSON")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.experiment is None and args.evaluation is None and args.classification is None:
        parser.error("one of --experiment, --evaluation or --classification is required")
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    try:
        if args.experiment is not None:
            rows = rows_from_mlflow(
                args.experiment, args.tracking_uri, args.guidance, args.parent_run, args.variant
            )
        elif args.evaluation is not None:
            rows = [row_from_evaluation(path) for path in args.evaluation]
        else:
            rows = []
        rows += [row_from_classification(path) for path in args.classification or []]
    except FieldTableError as exc:
        print(f"field_table: {exc}", file=sys.stderr)
        return 2
    result = build_table(rows, args.guidance, categories)
    for line in ladder_notes(rows):
        print(f"field_table: {line}", file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(result["markdown"] if args.markdown else text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
