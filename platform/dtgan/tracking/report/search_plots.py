"""Plots of a search from its trials (child runs), with matplotlib only (Optuna stays in the search adapter).

Parameter importance is |Spearman rho| between each varied parameter and the first objective over the
finished trials (categorical values are ranked by their order of appearance); it is a rank correlation, not
Optuna's fANOVA, and it says nothing about interactions.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from dtgan import keys
from dtgan.tracking.report.runs import RunRecord


def trials_frame(runs: Sequence[RunRecord], objectives: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per trial that logged every objective: the varied params (numeric where possible) + objectives."""
    rows = [
        {**r.params, **{key: r.metrics[key] for key, _ in objectives}}
        for r in runs
        if all(key in r.metrics for key, _ in objectives)
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    objective_keys = [key for key, _ in objectives]
    varied = [c for c in frame.columns if c not in objective_keys and frame[c].nunique(dropna=True) > 1]
    frame = frame[varied + objective_keys].copy()
    for column in varied:
        numeric = pd.to_numeric(frame[column], errors="coerce")
        frame[column] = numeric if numeric.notna().all() else pd.Categorical(frame[column]).codes
    return frame


def parameter_importance(frame: pd.DataFrame, objective: str) -> pd.Series:
    """|Spearman rho| of each varied parameter with the objective, highest first."""
    params = [
        c
        for c in frame.columns
        if not c.startswith((keys.EVAL_PREFIX, keys.DOWNSTREAM_PREFIX, keys.TRAIN_PREFIX))
    ]
    rho = {p: abs(stats.spearmanr(frame[p], frame[objective]).statistic) for p in params}
    return pd.Series(rho, dtype=float).fillna(0.0).sort_values(ascending=False)


def importance_figure(frame: pd.DataFrame, objective: str) -> Figure:
    importance = parameter_importance(frame, objective)
    figure = Figure(figsize=(6, 0.4 * len(importance) + 1.5))
    axes = figure.add_subplot()
    axes.barh(importance.index[::-1], importance.values[::-1])
    axes.set_xlabel(f"|Spearman rho| with {objective}")
    axes.set_title("parameter importance (rank correlation)")
    figure.tight_layout()
    return figure


def parallel_coordinates_figure(frame: pd.DataFrame, objective: str) -> Figure:
    """Each trial a line across the varied params scaled to [0, 1], coloured by the objective."""
    columns = [c for c in frame.columns if c != objective] + [objective]
    values = frame[columns].astype(float)
    span = (values.max() - values.min()).replace(0.0, 1.0)
    scaled = (values - values.min()) / span
    figure = Figure(figsize=(max(6, 1.5 * len(columns)), 4))
    axes = figure.add_subplot()
    objective_scaled = scaled[objective].to_numpy()
    cmap = matplotlib.colormaps["viridis"]
    for i in range(len(scaled)):
        axes.plot(range(len(columns)), scaled.iloc[i].to_numpy(), color=cmap(objective_scaled[i]), alpha=0.7)
    axes.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize="small")
    axes.set_ylabel("scaled to [min, max] of the trials")
    axes.set_title(f"parallel coordinates (colour: {objective})")
    figure.tight_layout()
    return figure


def pareto_mask(points: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """(N,) True where no other point is at least as good in every objective and better in one."""
    signed = points * np.array([1.0 if m == "min" else -1.0 for m in modes])
    dominated = np.zeros(len(signed), dtype=bool)
    for i in range(len(signed)):
        others = np.delete(signed, i, axis=0)
        dominated[i] = bool(np.any(np.all(others <= signed[i], axis=1) & np.any(others < signed[i], axis=1)))
    return ~dominated


def pareto_figure(frame: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> Figure:
    (key_x, mode_x), (key_y, mode_y) = objectives[:2]
    points = frame[[key_x, key_y]].to_numpy(dtype=float)
    front = pareto_mask(points, (mode_x, mode_y))
    figure = Figure(figsize=(5, 4))
    axes = figure.add_subplot()
    axes.scatter(points[~front, 0], points[~front, 1], color="0.6", label="dominated")
    ordered = points[front][np.argsort(points[front, 0])]
    axes.plot(ordered[:, 0], ordered[:, 1], "o-", color="C3", label="Pareto front")
    axes.set_xlabel(f"{key_x} ({mode_x})")
    axes.set_ylabel(f"{key_y} ({mode_y})")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def search_figures(runs: Sequence[RunRecord], objectives_tag: str | None) -> dict[str, Figure]:
    """The search plots the trials support: importance and parallel coordinates (>= 2 trials, >= 1 varied
    param), the Pareto front (two objectives)."""
    objectives = keys.parse_search_objectives(objectives_tag)
    frame = trials_frame(runs, objectives)
    objective = objectives[0][0]
    if len(frame) < 2 or frame.shape[1] <= len(objectives):
        return {}
    figures = {
        "search_param_importance": importance_figure(frame, objective),
        "search_parallel_coordinates": parallel_coordinates_figure(
            frame.drop(columns=[k for k, _ in objectives[1:]]), objective
        ),
    }
    if len(objectives) >= 2:
        figures["search_pareto_front"] = pareto_figure(frame, objectives)
    return figures
