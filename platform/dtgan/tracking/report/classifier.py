"""Classifier-error tables: Table 2 (arms x backbones), Tables 3/8 (data set size x arms), Table 4 (cross-domain).

Errors are logged per seed run as fractions (``downstream/error_{arm}_{backbone}``) and shown in percent; cells of
one column are compared on seed-level evidence (``significance.seed_comparisons``: paired t over shared seeds,
else Welch t; Holm-corrected per column).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from dtgan import keys
from dtgan.tracking.report.cells import Cell, Column, Table
from dtgan.tracking.report.config import ReportConfig
from dtgan.tracking.report.runs import RunRecord
from dtgan.tracking.report.significance import seed_comparisons

PERCENT = 100.0
DECIMALS = 2

# A cell's source: (row, column key) -> the metric key to read from the runs the selector keeps.
CellSource = Callable[[RunRecord, str, str], str | None]


def _backbones(runs: Sequence[RunRecord]) -> list[str]:
    return sorted({p[1] for r in runs for k in r.metrics if (p := keys.parse_error_key(k))})


def _arms(runs: Sequence[RunRecord]) -> list[str]:
    logged = {p[0] for r in runs for k in r.metrics if (p := keys.parse_error_key(k))}
    return [a for a in keys.ARMS if a in logged]


def weights_note(runs: Sequence[RunRecord]) -> str:
    """' (ImageNet)', ' (from scratch)' or '' for a table's title: the classifiers' initial weights, as logged."""
    logged = sorted(
        {r.tags[keys.TAG_CLASSIFIER_WEIGHTS] for r in runs if keys.TAG_CLASSIFIER_WEIGHTS in r.tags}
    )
    return f" ({' / '.join(logged)})" if logged else ""


def _is_cross_domain(run: RunRecord) -> bool:
    return keys.PARAM_DEFECT_SOURCE in run.params


def error_table(
    table_id: str,
    title: str,
    runs: Sequence[RunRecord],
    rows: list[str],
    columns: list[Column],
    source: CellSource,
    config: ReportConfig,
) -> Table:
    """Cells from ``source(run, row, column_key) -> metric key`` (None: the run is not in that cell)."""
    cells = {}
    for row, column in itertools.product(rows, columns):
        cell = Cell(decimals=DECIMALS)
        for run in runs:
            metric_key = source(run, row, column.key)
            if metric_key is None or metric_key not in run.metrics:
                continue
            seed = run.seed if run.seed is not None else run.run_id
            cell.values.setdefault(seed, PERCENT * run.metrics[metric_key])  # first run of a seed wins
        if not cell.values:
            cell.missing_reason = f"no finished run logged {column.label} for {row}"
        cells[(row, column.key)] = cell
    table = Table(table_id, title, rows, columns, cells)
    table.comparisons = seed_comparisons(table, config.significance_alpha)
    table.mark_significant_best()
    return table


def _size(run: RunRecord) -> str | None:
    return run.params.get(keys.PARAM_NORMALS_PER_CLASS)


def arms_backbones_tables(runs: Sequence[RunRecord], config: ReportConfig) -> list[Table]:
    """Table 2: rows arm (per method variant when several), columns backbone; one table per data set size."""
    runs = [r for r in runs if not _is_cross_domain(r)]
    backbones = _backbones(runs)
    if not backbones:
        return []
    tables = []
    sizes = sorted({_size(r) for r in runs}, key=lambda s: (s is None, float(s) if s else 0.0))
    for size in sizes:
        sized = [r for r in runs if _size(r) == size]
        variants = sorted({r.variant or "" for r in sized})
        rows = [f"{v}: {a}" if len(variants) > 1 else a for v in variants for a in _arms(sized)]
        row_key = {f"{v}: {a}" if len(variants) > 1 else a: (v, a) for v in variants for a in _arms(sized)}
        columns = [Column(key=b, label=b, metric="error") for b in backbones]

        def source(run: RunRecord, row: str, column_key: str, row_key=row_key) -> str | None:
            variant, arm = row_key[row]
            return keys.downstream_key(arm, column_key) if (run.variant or "") == variant else None

        suffix = f" at {size} normals per class" if size is not None else ""
        table_id = "table2_arms_backbones" + (f"_{size}" if size is not None and len(sizes) > 1 else "")
        tables.append(
            error_table(
                table_id,
                f"Table 2: classifier error (%), arms x backbones{suffix}{weights_note(sized)}",
                sized,
                rows,
                columns,
                source,
                config,
            )
        )
    return tables


def size_arms_tables(runs: Sequence[RunRecord], config: ReportConfig) -> list[Table]:
    """Tables 3/8: rows data set size (normals per class), columns arm; one table per backbone (and variant)."""
    runs = [r for r in runs if not _is_cross_domain(r) and _size(r) is not None]
    sizes = sorted({_size(r) for r in runs}, key=float)
    if len(sizes) < 2:
        return []
    tables = []
    variants = sorted({r.variant or "" for r in runs})
    for backbone, variant in itertools.product(_backbones(runs), variants):
        selected = [r for r in runs if (r.variant or "") == variant]
        columns = [Column(key=a, label=a, metric="error") for a in _arms(selected)]

        def source(run: RunRecord, row: str, column_key: str, backbone=backbone) -> str | None:
            return keys.downstream_key(column_key, backbone) if _size(run) == row else None

        name = f"{backbone}" + (f", {variant}" if len(variants) > 1 else "")
        tables.append(
            error_table(
                f"table3_size_arms_{backbone}" + (f"_{variant}" if len(variants) > 1 else ""),
                f"Tables 3/8: classifier error (%) vs normals per class ({name}){weights_note(selected)}",
                selected,
                sizes,
                columns,
                source,
                config,
            )
        )
    return tables


def cross_domain_tables(runs: Sequence[RunRecord], config: ReportConfig) -> list[Table]:
    """Table 4: rows target product, columns trad_aug and v{defect source} (reference arm); one per backbone."""
    runs = [r for r in runs if _is_cross_domain(r) and keys.PARAM_TARGET_PRODUCT in r.params]
    if not runs:
        return []
    targets = sorted({r.params[keys.PARAM_TARGET_PRODUCT] for r in runs})
    sources = sorted({r.params[keys.PARAM_DEFECT_SOURCE] for r in runs}, key=lambda s: (len(s), s))
    columns = [Column(key="trad_aug", label="trad_aug", metric="error")]
    columns += [Column(key=f"v{s}", label=f"v{s}", metric="error") for s in sources]
    tables = []
    for backbone in _backbones(runs):

        def source(run: RunRecord, row: str, column_key: str, backbone=backbone) -> str | None:
            if run.params[keys.PARAM_TARGET_PRODUCT] != row:
                return None
            if column_key == "trad_aug":
                return keys.downstream_key("trad_aug", backbone)
            matches = column_key == f"v{run.params[keys.PARAM_DEFECT_SOURCE]}"
            return keys.downstream_key("reference", backbone) if matches else None

        tables.append(
            error_table(
                f"table4_cross_domain_{backbone}",
                f"Table 4: cross-domain classifier error (%), {backbone}{weights_note(runs)}",
                runs,
                targets,
                columns,
                source,
                config,
            )
        )
    return tables
