"""The study's summary for the MLflow UI: a wide per-variant table and the parent run's description.

Pure (pandas, no MLflow): the driver builds these from its trial rows and the report's cells, the backend
logs them (``log_table`` for MLflow's Evaluation view, ``mlflow.note.content`` for the description).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dtgan import keys
from dtgan.config.model import LADDER_STEPS, TOGGLES, toggles_of_step
from dtgan.tracking.describe import variant_description
from dtgan.tracking.trial_rows import TrialRow, TrialStatus

NOTE_MAX_CHARS = 7900  # MLflow caps a tag value at 8000 characters
_HEADLINE = (("fid_mix", keys.fid_key("mix")), ("kid_mix", keys.kid_key("mix")))
_REPORT_TABLE = "table15_ablation"


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _report_cis(cells: pd.DataFrame | None) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(variant, "fid_mix"|"kid_mix") -> (ci_low, ci_high) from the report's Table 15 cells, when it has them."""
    found: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    if (
        cells is None
        or cells.empty
        or not {"table", "row", "column", "metric", "ci_low", "ci_high"} <= set(cells)
    ):
        return found
    table = cells[cells["table"] == _REPORT_TABLE]
    for _, cell in table.iterrows():
        label = str(cell["column"]).lower()
        if "mix" not in label or cell["metric"] not in ("fid", "kid"):
            continue
        variant = str(cell["row"]).strip("()")
        found[(variant, f"{cell['metric']}_mix")] = (_finite(cell["ci_low"]), _finite(cell["ci_high"]))
    return found


def variants_table(rows: Sequence[TrialRow], cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant: its toggles, seeds, FID/KID mix (mean over completed seeds, with the report's
    bootstrap CI where it has one), each downstream classifier error (mean over seeds), and its runs.

    ``rows`` are the study's trial rows; only completed trials contribute numbers.
    """
    cis = _report_cis(cells)
    by_variant: dict[str, list[TrialRow]] = {}
    for row in rows:
        by_variant.setdefault(row.variant or row.trial, []).append(row)
    error_keys = sorted(
        {k for r in rows for k in r.metrics if k.startswith(keys.DOWNSTREAM_PREFIX) and k.endswith("_mean")}
    )
    records = []
    for variant in sorted(by_variant, key=lambda v: (LADDER_STEPS.index(v) if v in LADDER_STEPS else 99, v)):
        trials = by_variant[variant]
        done = [r for r in trials if r.status == TrialStatus.COMPLETED]
        record: dict[str, Any] = {"variant": variant, "description": variant_description(variant)}
        if variant in LADDER_STEPS:
            record.update({name: bool(getattr(toggles_of_step(variant), name)) for name in TOGGLES})
        record.update({"trials": len(trials), "completed": len(done)})
        for name, key in _HEADLINE:
            values = [v for r in done if (v := _finite(r.metrics.get(key))) is not None]
            low, high = cis.get((variant, name), (None, None))
            record.update({name: _mean(values), f"{name}_ci_low": low, f"{name}_ci_high": high})
        for key in error_keys:
            values = [v for r in done if (v := _finite(r.metrics.get(key))) is not None]
            record[key.removeprefix(keys.DOWNSTREAM_PREFIX).removesuffix("_mean")] = _mean(values)
        record["runs"] = ", ".join(r.run_name or r.trial for r in trials)
        record["run_ids"] = ", ".join(r.run_id for r in trials if r.run_id)
        records.append(record)
    return pd.DataFrame.from_records(records)


def _number(value: Any, digits: int = 4) -> str:
    value = _finite(value)
    return "-" if value is None else f"{value:.{digits}g}"


def _with_ci(record: Mapping[str, Any], name: str) -> str:
    text = _number(record.get(name))
    low, high = _finite(record.get(f"{name}_ci_low")), _finite(record.get(f"{name}_ci_high"))
    return text if low is None or high is None else f"{text} [{low:.4g}, {high:.4g}]"


def run_link(experiment_id: str, run_id: str) -> str:
    """A link the MLflow UI resolves (relative to the UI's page)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def study_note(
    *,
    kind: str,
    study: str,
    experiment_id: str,
    table: pd.DataFrame,
    rows: Sequence[TrialRow],
    best: TrialRow | None,
    objective: str,
    seeds: Sequence[int],
    total_steps: int,
    fid_extractor: str | None,
) -> str:
    """The parent run's description (Markdown): the table, the best variant with a link to its run, what
    the comparison does and does not establish."""
    completed = sum(r.status == TrialStatus.COMPLETED for r in rows)
    lines = [
        f"**{kind} study `{study}`**: {completed}/{len(rows)} trials completed, "
        f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}), {total_steps} training steps each.",
        "",
    ]
    errors = [c for c in table.columns if c.startswith("error_")] if not table.empty else []
    header = ["variant", "what it is", "FID mix [95% CI]", "KID mix [95% CI]", *errors]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in table.to_dict("records"):
        cells = [
            record["variant"],
            str(record["description"]).split(";")[0],
            _with_ci(record, "fid_mix"),
            _with_ci(record, "kid_mix"),
            *(_number(record.get(e)) for e in errors),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    if best is not None and best.run_id:
        value = _number(best.metrics.get(objective))
        lines.append(
            f"**Best by {objective}**: [{best.run_name or best.trial}]"
            f"({run_link(experiment_id, best.run_id)}) ({value}); its generator is the logged model."
        )
    else:
        lines.append(f"**Best by {objective}**: none (no completed trial has it).")
    lines += [
        "",
        "**What this establishes**: how the variants rank on this data, with these seeds, steps and "
        f"feature extractor ({fid_extractor or 'see the fid_extractor tag'}); the CIs are bootstrap intervals over "
        "the evaluated images of each variant. A difference counts only where the report's pairwise comparison "
        "(report/report.md) calls it significant.",
        "**What it does not**: "
        + (
            "with one seed, nothing about training variance (rerun with more study.seeds); "
            if len(seeds) < 2
            else ""
        )
        + "nothing about longer training or other data; numbers from another feature extractor (or the paper's "
        "Inception FID) are not comparable.",
    ]
    text = "\n".join(lines)
    return (
        text
        if len(text) <= NOTE_MAX_CHARS
        else text[: NOTE_MAX_CHARS - 40] + "\n\n(truncated: see report/report.md)"
    )
