"""A finished search as a result on its MLflow parent run: parameter importances, the Pareto front, the
confirmation on fresh seeds. Everything goes through the tracker's own methods (metrics, tags, tables, text and
artifacts), so this module adds no MLflow call of its own."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

IMPORTANCE_PREFIX = "search/importance/"
IMPORTANCES_TABLE = "study/param_importances.json"
IMPORTANCES_FIGURE_DIR = "study/figures"
PARETO_TABLE = "study/pareto_front_table.json"
CONFIRMATION_ARTIFACT = "study/confirmation.md"
TAG_IMPORTANCES = "search_param_importances"
TAG_CONFIRMATION = "search_confirmation"


def importance_metric_key(param: str) -> str:
    return IMPORTANCE_PREFIX + param


def log_importances(
    tracker: Any, run_id: str, importances: dict[str, float], objective: str, method: str
) -> None:
    """One metric per parameter (``search/importance/<key>``, the parent run's chart view), a table and a bar
    chart; the tag says which method and objective."""
    if not importances:
        return
    tracker.log_metrics(run_id, {importance_metric_key(k): float(v) for k, v in importances.items()}, 0)
    table = pd.DataFrame(
        [{"parameter": k, "importance": float(v), "objective": objective} for k, v in importances.items()]
    )
    tracker.log_table(run_id, table, IMPORTANCES_TABLE)
    tracker.set_tags(
        run_id,
        {
            TAG_IMPORTANCES: f"{method} for {objective}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in importances.items())
        },
    )
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.4 * len(importances) + 1.2))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel(f"{method} importance for {objective}")
    fig.tight_layout()
    with tempfile.TemporaryDirectory(prefix="dtgan-importance-") as tmp:
        path = Path(tmp) / "param_importances.png"
        fig.savefig(path, dpi=100)
        tracker.log_artifacts(run_id, [path], IMPORTANCES_FIGURE_DIR)


def log_pareto(tracker: Any, run_id: str, front: list[dict[str, Any]]) -> None:
    """The Pareto front as a table (one row per trial on the front: objectives and params)."""
    if not front:
        return
    rows = [{**{k: v for k, v in r.items() if k != "params"}, **(r.get("params") or {})} for r in front]
    tracker.log_table(run_id, pd.DataFrame(rows), PARETO_TABLE)


def log_confirmation(tracker: Any, run_id: str, markdown: str, summary: str) -> None:
    """The confirmation table (Markdown) as an artifact, its one-line verdict as a tag."""
    tracker.log_text(run_id, markdown + "\n", CONFIRMATION_ARTIFACT)
    tracker.set_tags(run_id, {TAG_CONFIRMATION: summary})
