"""FID/KID tables (Table 15 ablation ladder, Table 1 methods x products) with bootstrap CIs from features."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from dtgan.tracking.report import keys
from dtgan.tracking.report.cells import Cell, Column, Comparison, Table
from dtgan.tracking.report.config import ReportConfig
from dtgan.tracking.report.runs import FeatureLoader, RunRecord
from dtgan.tracking.report.uncertainty import (
    Replicates,
    bootstrap_difference,
    bootstrap_fidelity,
    percentile_ci,
)

DECIMALS = {"fid": 2, "kid": 3}


class FidelityBootstrap:
    """Bootstrap replicates per (run, guidance, scope), computed once from the run's logged features."""

    def __init__(self, load_features: FeatureLoader, config: ReportConfig) -> None:
        self._load = load_features
        self._config = config
        self._cache: dict[tuple[str, str, str], Replicates | str] = {}

    def replicates(self, run: RunRecord, guidance: str, scope: str) -> Replicates | str:
        """The run's replicates, or the reason there are none (a missing artifact)."""
        key = (run.run_id, guidance, scope)
        if key not in self._cache:
            gen_path = keys.generated_features_artifact(guidance, scope)
            real_path = keys.real_features_artifact(scope)
            gen, real = self._load(run.run_id, gen_path), self._load(run.run_id, real_path)
            if gen is None or real is None:
                absent = gen_path if gen is None else real_path
                self._cache[key] = f"no CI: run {run.run_id[:8]} logged no {absent}"
            else:
                self._cache[key] = bootstrap_fidelity(
                    gen, real, stream=f"{run.run_id}/{gen_path}", samples=self._config.bootstrap_samples,
                    seed=self._config.bootstrap_seed, kid_subset_rows=self._config.kid_subset_rows,
                )
        return self._cache[key]


def _extractors(runs: Sequence[RunRecord]) -> list[str]:
    return sorted({r.extractor for r in runs})


def fidelity_table(
    table_id: str,
    title: str,
    runs: Sequence[RunRecord],
    rows: list[str],
    row_of: Callable[[RunRecord], str | None],
    metrics: Sequence[tuple[str, str, str]],
    bootstrap: FidelityBootstrap,
    config: ReportConfig,
) -> Table:
    """Rows x (metric, guidance, scope, extractor) columns; each cell the mean over the row's seed runs.

    Args:
        rows: row labels in display order; rows without runs show "—" with the reason.
        row_of: the row a run belongs to (None: not in this table).
        metrics: (metric "fid"|"kid", guidance, scope) per column, repeated for each extractor.
    """
    # Only runs with FID/KID count: classifier-only runs of the same variant carry no extractor.
    members = [r for r in runs if row_of(r) is not None and any(keys.parse_fidelity_key(k) for k in r.metrics)]
    columns, cells = [], {}
    for (metric, guidance, scope), extractor in itertools.product(metrics, _extractors(members)):
        name = f"{metric.upper()} {guidance}" + ("" if scope == keys.SCOPE_ALL else f" {scope}")
        column = Column(key=f"{metric}_{guidance}_{scope}@{extractor}", label=f"{name} [{extractor}]",
                        metric=metric, extractor=extractor)
        columns.append(column)
        for row in rows:
            cells[(row, column.key)] = _fidelity_cell(
                [r for r in members if row_of(r) == row and r.extractor == extractor],
                row, metric, guidance, scope, extractor, bootstrap, config,
            )
    table = Table(table_id, title, rows, columns, cells, test_name="paired bootstrap of the difference")
    table.drop_empty_columns()
    table.comparisons = _bootstrap_comparisons(table, config.significance_alpha)
    table.mark_significant_best()
    return table


def _fidelity_cell(
    runs: list[RunRecord], row: str, metric: str, guidance: str, scope: str, extractor: str,
    bootstrap: FidelityBootstrap, config: ReportConfig,
) -> Cell:
    cell = Cell(decimals=DECIMALS[metric])
    metric_key = keys.fidelity_key(metric, guidance, scope)
    if not runs:
        cell.missing_reason = f"no finished run of {row} measured with {extractor}"
        return cell
    logged = [r for r in runs if metric_key in r.metrics]
    if not logged:
        cell.missing_reason = f"no run of {row} logged {metric_key}"
        return cell
    cell.values = {_seed_label(r): r.metrics[metric_key] for r in logged}
    reps = [bootstrap.replicates(r, guidance, scope) for r in logged]
    reasons = [rep for rep in reps if isinstance(rep, str)]
    if reasons:
        cell.ci_missing_reason = reasons[0]
    else:
        cell.replicates = np.mean([getattr(rep, metric) for rep in reps], axis=0)  # (B,) mean over seeds
        cell.ci = percentile_ci(cell.replicates, config.significance_alpha)
    return cell


def _seed_label(run: RunRecord) -> str:
    return run.seed if run.seed is not None else run.run_id


def _bootstrap_comparisons(table: Table, alpha: float) -> list[Comparison]:
    comparisons = []
    for column in table.columns:
        present = [r for r in table.rows if table.cells[(r, column.key)].values]
        for row_a, row_b in itertools.combinations(present, 2):
            a, b = table.cells[(row_a, column.key)], table.cells[(row_b, column.key)]
            if a.replicates is None or b.replicates is None:
                comparisons.append(Comparison(column.key, row_a, row_b, None,
                                              a.ci_missing_reason or b.ci_missing_reason))
            else:
                test = bootstrap_difference(a.replicates, b.replicates, a.mean - b.mean, alpha)
                comparisons.append(Comparison(column.key, row_a, row_b, test))
    return comparisons


def ablation_table(runs: Sequence[RunRecord], bootstrap: FidelityBootstrap, config: ReportConfig) -> Table | None:
    """Table 15: ladder steps (a)..(last present) x FID and KID for latent, reference and mix (all products)."""
    steps = [s for s in keys.LADDER_STEPS if any(r.variant == s for r in runs)]
    if not steps:
        return None
    rows = [f"({s})" for s in keys.LADDER_STEPS[: keys.LADDER_STEPS.index(steps[-1]) + 1]]
    metrics = [(m, g, keys.SCOPE_ALL) for m in ("fid", "kid") for g in keys.GUIDANCES]
    return fidelity_table(
        "table15_ablation", "Table 15: ablation ladder, FID and KID (all products)", runs, rows,
        lambda r: f"({r.variant})" if r.variant in keys.LADDER_STEPS else None, metrics, bootstrap, config,
    )


def methods_products_table(
    runs: Sequence[RunRecord], bootstrap: FidelityBootstrap, config: ReportConfig, guidance: str = "mix"
) -> Table | None:
    """Table 1: methods (variants) x FID and KID per product and for all products, for one guidance."""
    products = sorted({
        parsed[2] for r in runs for k in r.metrics
        if (parsed := keys.parse_fidelity_key(k)) and parsed[1] == guidance and parsed[2] != keys.SCOPE_ALL
    })
    if not products:
        return None
    variants = sorted({r.variant for r in runs if r.variant is not None})
    metrics = [(m, guidance, scope) for m in ("fid", "kid") for scope in [*products, keys.SCOPE_ALL]]
    return fidelity_table(
        "table1_methods_products", f"Table 1: methods x products, FID and KID ({guidance} set)", runs,
        variants, lambda r: r.variant, metrics, bootstrap, config,
    )
