"""What a finished search says, on its MLflow parent run and in print: Optuna's fANOVA parameter importances for
the primary objective, the Pareto front with two objectives, and (``--export``) the winner as a preset."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dtgan.search.export import export_winner, front_rows, importance_inputs, recipe_overrides
from dtgan.search.spaces import load_search_space
from dtgan.tracking import search_record
from dtgan.tracking.trial_rows import TrialRow

log = logging.getLogger(__name__)

IMPORTANCE_METHOD = "Optuna fANOVA"


def conclude_search(
    launch: Any, trial_rows: Sequence[TrialRow | dict[str, Any]], export: str | Path | None = None
) -> str:
    """Log importances and the front to the parent run, export the winner when asked; the lines printed.
    ``trial_rows``: the study's rows, or their ``trials.json`` records."""
    from dtgan.search import ray_tune

    rows = [r.record() if isinstance(r, TrialRow) else r for r in trial_rows]

    study = launch.config.study
    objective = study.objective
    lines = []
    trials = importance_inputs(rows, objective.metric)
    if len(trials) >= 2:
        space = load_search_space(study.search_space)
        importances = {
            k: float(v) for k, v in ray_tune.param_importances(trials, space, study.search_seed).items()
        }
        search_record.log_importances(
            launch.tracker, launch.parent_run_id, importances, objective.metric, IMPORTANCE_METHOD
        )
        lines += [
            "",
            f"Parameter importances ({IMPORTANCE_METHOD}, {objective.metric}, {len(trials)} completed trials):",
        ]
        lines += [f"- {k}: {v:.3f}" for k, v in importances.items()]
    else:
        lines += [
            "",
            f"Parameter importances: need >= 2 completed trials with {objective.metric}, got {len(trials)}",
        ]
    if len(study.objectives) == 2:
        front = front_rows(rows, [o.metric for o in study.objectives], [o.mode for o in study.objectives])
        search_record.log_pareto(launch.tracker, launch.parent_run_id, front)
    if export:
        base = launch.config.preset or "cpu32"
        path, best = export_winner(
            rows,
            objective.metric,
            objective.mode,
            base=base,
            out_path=export,
            overrides=recipe_overrides(launch.config, base),
            study=launch.study_name,
            launch=launch.run_name,
            parent_run_id=launch.parent_run_id,
            tracking_uri=launch.tracker.tracking_uri,
        )
        launch.tracker.set_tags(launch.parent_run_id, {"search_exported_preset": str(path)})
        lines += [
            "",
            f"winner {best['trial']} ({objective.metric} = {best['metrics'][objective.metric]:.4g}) exported: {path}",
        ]
    return "\n".join(lines)
