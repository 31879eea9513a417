"""The field's table beside Table 1: IS and IC-LPIPS (higher is better) per product and over all products.

IS columns are split by the FID extractor (its logits give the IS: only ``inception-v3-compat`` compares with
published IS), IC-LPIPS columns by the LPIPS trunk and weights (tag ``lpips_backbone``; DFMGAN used AlexNet, SeaS
VGG). A run that could not compute IC-LPIPS says why in its tag ``ic_lpips_status``; that reason is the cell's
footnote, so "not computed" is never an empty or a silent cell. No eval CI: these scores log no features.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from dtgan import keys
from dtgan.tracking.report.cells import Cell, Table, scoped_column
from dtgan.tracking.report.config import ReportConfig
from dtgan.tracking.report.runs import RunRecord
from dtgan.tracking.report.significance import seed_comparisons

DECIMALS = {"is": 2, "ic_lpips": 3}
LABELS = {"is": "IS", "ic_lpips": "IC-LPIPS"}
NOT_COMPUTED = "not computed"


def lpips_label(run: RunRecord) -> str:
    """The LPIPS trunk of a run's IC-LPIPS values, or ``not computed`` when it logged none."""
    return run.tags.get(keys.TAG_LPIPS_BACKBONE) or NOT_COMPUTED


def _measured_by(run: RunRecord, metric: str) -> str:
    return run.extractor if metric == "is" else lpips_label(run)


def diversity_table(runs: Sequence[RunRecord], config: ReportConfig, guidance: str = "mix") -> Table | None:
    """Methods (variants) x IS and IC-LPIPS per product and for all products, for one guidance; None when no
    run logged either."""
    members = [
        r
        for r in runs
        if r.variant is not None
        and (
            any((p := keys.parse_diversity_key(k)) and p[1] == guidance for k in r.metrics)
            or r.tags.get(keys.TAG_IC_LPIPS_STATUS, "").startswith(NOT_COMPUTED)
        )
    ]
    if not members:
        return None
    parsed = [
        p for r in members for k in r.metrics if (p := keys.parse_diversity_key(k)) and p[1] == guidance
    ]
    products = sorted({p[2] for p in parsed if p[2] != keys.SCOPE_ALL and "." not in p[2]})
    rows = sorted({r.variant for r in members})
    columns, cells = [], {}
    for metric in ("is", "ic_lpips"):
        for scope, measured in itertools.product(
            [*products, keys.SCOPE_ALL], sorted({_measured_by(r, metric) for r in members})
        ):
            column = scoped_column(metric, LABELS[metric], guidance, scope, measured)
            row_cells = {
                row: _cell(
                    [r for r in members if r.variant == row and _measured_by(r, metric) == measured],
                    row,
                    keys.eval_key(metric, guidance, keys.scope_product(scope)),
                    metric,
                )
                for row in rows
            }
            if not any(c.values or _not_computed(c) for c in row_cells.values()):
                continue  # e.g. IS columns of an extractor only some other metric used
            columns.append(column)
            cells.update({(row, column.key): cell for row, cell in row_cells.items()})
    if not columns:
        return None
    table = Table(
        "field_is_ic_lpips",
        f"Field metrics: IS and IC-LPIPS ({guidance} set; higher is better)",
        rows,
        columns,
        cells,
        higher_is_better=True,
    )
    table.comparisons = seed_comparisons(table, config.significance_alpha)
    table.mark_significant_best()
    table.notes.append(
        "IS on the FID extractor's logits (torch-fidelity's formula): only [inception-v3-compat...] columns "
        "compare with published IS. IC-LPIPS (DFMGAN's): each synthetic image joins its nearest real defect image "
        "of its product x defect by LPIPS, mean pairwise LPIPS per cluster, averaged over clusters; a product's "
        "value is the mean over its defect types. Column brackets name the extractor / LPIPS trunk."
    )
    return table


def _not_computed(cell: Cell) -> bool:
    return bool(cell.missing_reason and cell.missing_reason.startswith(NOT_COMPUTED))


def _cell(runs: list[RunRecord], row: str, metric_key: str, metric: str) -> Cell:
    cell = Cell(decimals=DECIMALS[metric])
    logged = [r for r in runs if metric_key in r.metrics]
    if logged:
        cell.values = {r.seed if r.seed is not None else r.run_id: r.metrics[metric_key] for r in logged}
        return cell
    statuses = sorted({r.tags.get(keys.TAG_IC_LPIPS_STATUS, "") for r in runs} - {"", "computed"})
    if metric == "ic_lpips" and statuses:
        cell.missing_reason = statuses[0]
    elif not runs:
        cell.missing_reason = f"no finished run of {row} with this extractor"
    else:
        cell.missing_reason = f"no run of {row} logged {metric_key}"
    return cell
