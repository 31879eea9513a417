"""A finished search's conclusion: parameter importances and the Pareto front on the parent run, and the winner
exported as a preset that any command takes with ``-c`` (``experiments/presets/search_*.yaml``).

The exported file is the study's own preset (its ``base``) with the winner's sampled values as overrides, headed
by comments that say where it came from: study, launch, MLflow parent run, trial, objective value, date and git
SHA. Training it again (``dtgan train -c search_cpu_winner``) reproduces the winner's configuration exactly.
"""

from __future__ import annotations

import datetime
import logging
import math
from pathlib import Path
from typing import Any

import yaml

from dtgan.config.loader import flatten, load_config, nest
from dtgan.errors import ConfigError
from dtgan.provenance import git_state
from dtgan.search.pareto import pareto_front
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)


def best_trial(rows: list[dict[str, Any]], metric: str, mode: str = "min") -> dict[str, Any] | None:
    """The completed trial with the best finite ``metric``."""
    scored = [
        r
        for r in rows
        if r["status"] == "completed" and isinstance(r["metrics"].get(metric), int | float)
        if math.isfinite(r["metrics"][metric])
    ]
    if not scored:
        return None
    sign = 1.0 if mode == "min" else -1.0
    return min(scored, key=lambda r: sign * r["metrics"][metric])


RECIPE_SECTIONS = (
    "data.",
    "model.",
    "loss.",
    "optim.",
    "train.",
    "evaluation.",
    "downstream.",
    "crop_paste.",
)


def _pinned_by_the_study(key: str, preset: dict[str, Any]) -> bool:
    """What the study driver pins so that every trial scores with one extractor (dtgan.search.study_extractor):
    weights files of the machine or bucket it ran on, and the extractor that ``auto`` resolved to there. Where
    the search ran, not what it found: a run of the exported preset resolves its own."""
    if key.startswith("evaluation.") and key.endswith("weights_path"):
        return True
    return key == "evaluation.feature_extractor" and preset.get(key) == "auto"


def recipe_overrides(config: Any, base: str) -> dict[str, Any]:
    """Dotted keys where the study's config differs from its preset ``base`` in what a run trains and measures
    (the launch's -o overrides); paths made absolute by the driver count as equal, study and tracking settings
    and the extractor the driver pinned are left out (where a search runs, not what it found)."""
    preset = flatten(load_config(base))
    out = {}
    for key, value in flatten(config).items():
        if (
            not key.startswith(RECIPE_SECTIONS)
            or preset.get(key) == value
            or _pinned_by_the_study(key, preset)
        ):
            continue
        if isinstance(value, str) and isinstance(preset.get(key), str):
            if Path(value).expanduser().resolve() == Path(preset[key]).expanduser().resolve():
                continue
        out[key] = value
    return out


def winner_preset_text(base: str, params: dict[str, Any], provenance: dict[str, Any]) -> str:
    """YAML of a preset: ``base`` plus the sampled ``params`` (dotted keys), headed by provenance comments."""
    lines = ["# Exported by experiments/search.py --export: the winner of a search, as a preset (-c)."]
    lines += [f"# {key}: {value}" for key, value in provenance.items()]
    body = {"base": base, **nest({k: _plain(v) for k, v in sorted(params.items())})}
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False)


def _plain(value: Any) -> Any:
    """numpy scalars and the like as plain YAML values."""
    if hasattr(value, "item"):
        return value.item()
    return value


def export_winner(
    rows: list[dict[str, Any]],
    metric: str,
    mode: str,
    base: str,
    out_path: str | Path,
    study: str,
    launch: str,
    parent_run_id: str | None,
    tracking_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write the best completed trial as a preset at ``out_path``; checks that it loads. (path, the trial row)."""
    out_path = Path(out_path)
    if "search" not in out_path.stem:
        raise ConfigError(f"--export {out_path}: an exported winner's file name must contain 'search'")
    best = best_trial(rows, metric, mode)
    if best is None:
        raise ConfigError(f"no completed trial has the objective {metric}; nothing to export")
    state = git_state()
    provenance = {
        "study": study,
        "launch": launch,
        "mlflow_parent_run": parent_run_id,
        "tracking_uri": tracking_uri,
        "trial": best["trial"],
        "mlflow_trial_run": best.get("run_id"),
        "objective": f"{metric} = {best['metrics'][metric]:.6g} ({mode})",
        "exported_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": f"{state['git_sha']}{' (dirty)' if state['git_dirty'] else ''}",
    }
    text = winner_preset_text(base, {**(overrides or {}), **best["params"]}, provenance)
    write_text_atomic(out_path, text)
    load_config(out_path)  # any command must take it
    log.info("winner %s exported as %s", best["trial"], out_path)
    return out_path, best


def front_rows(rows: list[dict[str, Any]], metrics: list[str], modes: list[str]) -> list[dict[str, Any]]:
    """The completed trials on the Pareto front of two objectives, with their values and params."""
    points = {
        r["trial"]: [r["metrics"][m] for m in metrics]
        for r in rows
        if r["status"] == "completed" and all(m in r["metrics"] for m in metrics)
    }
    by_trial = {r["trial"]: r for r in rows}
    return [
        {"trial": t, **dict(zip(metrics, points[t])), "params": by_trial[t]["params"]}
        for t in pareto_front(points, modes)
    ]


def importance_inputs(rows: list[dict[str, Any]], metric: str) -> list[tuple[dict[str, Any], float]]:
    """(params, value) of the completed trials that logged a finite ``metric``."""
    return [
        (r["params"], float(r["metrics"][metric]))
        for r in rows
        if r["status"] == "completed"
        and isinstance(r["metrics"].get(metric), int | float)
        and math.isfinite(r["metrics"][metric])
    ]
