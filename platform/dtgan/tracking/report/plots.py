"""Report plots (matplotlib, no pyplot state): FID per ablation step with CIs, classifier error vs data set size."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dtgan.tracking.report.cells import Table


def ablation_fid_figure(table: Table) -> Figure:
    """FID per ladder step for each guidance (and extractor); error bars are the eval CIs where logged; the
    floor (dashed) and ceiling (dotted) scale rows as horizontal lines where known."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    x = np.arange(len(table.rows))
    fid_columns = [c for c in table.columns if c.metric == "fid"]
    for offset, column in zip(np.linspace(-0.15, 0.15, len(fid_columns)), fid_columns):
        cells = [table.cell(r, column.key) for r in table.rows]
        means = np.array([c.mean if c.mean is not None else np.nan for c in cells])
        # The CI is of the bootstrap replicates; clip in case it does not bracket the logged mean.
        low = np.array([max(c.mean - c.ci[0], 0.0) if c.ci else 0.0 for c in cells])
        high = np.array([max(c.ci[1] - c.mean, 0.0) if c.ci else 0.0 for c in cells])
        line = axes.errorbar(
            x + offset, means, yerr=np.vstack([low, high]), marker="o", capsize=3, label=column.label
        )
        for row, role in table.scale_rows.items():  # the scale: dashed floor, dotted ceiling
            scale = table.cells.get((row, column.key))
            if scale is not None and scale.mean is not None:
                axes.axhline(
                    scale.mean,
                    color=line[0].get_color(),
                    linestyle="--" if role == "floor" else ":",
                    linewidth=1,
                    label=f"{row} ({column.label})",
                )
    axes.set_xticks(x, table.rows)
    axes.set_xlabel("ablation step")
    axes.set_ylabel("FID (lower is better)")
    axes.set_title("FID per ablation step (bars: bootstrap CI where features were logged)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def error_vs_size_figure(table: Table) -> Figure:
    """Classifier error (%) vs normals per class, one line per arm; error bars are the std over seeds."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    sizes = np.array([float(r) for r in table.rows])
    for column in table.columns:
        cells = [table.cell(r, column.key) for r in table.rows]
        means = np.array([c.mean if c.mean is not None else np.nan for c in cells])
        stds = np.array([c.std if c.std is not None else 0.0 for c in cells])
        axes.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=column.label)
    axes.set_xlabel("normal images per class")
    axes.set_ylabel("test error (%)")
    axes.set_title(table.title.split(": ", 1)[-1], fontsize="small")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
