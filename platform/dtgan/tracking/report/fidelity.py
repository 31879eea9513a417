"""FID/KID tables (Table 15 ablation ladder, Table 1 methods x products) with eval CIs from features and two
scale rows on the same extractor and real set:

- floor: two disjoint random halves of the real features against each other (``ReportConfig.floor_splits``
  splits; the cell is their mean, its CI the percentile range over splits), what a perfect generator scores
  at that sample size; FID with the report's float64 formula (the same as torch-fidelity's), KID unbiased
  on the first ``kid_subset_rows`` rows of each half;
- ceiling: the same evaluation of the step-0 networks, ``eval_init/{fid,kid}_...`` (logged by study trials
  with ``train.checkpoint_at_start``), pooled over the table's runs.

Each trained cell gets its position between them (0 = its own runs' ceiling, or the pooled one; 1 = floor)
and is flagged "not trained" below ``ReportConfig.not_trained_below``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from dtgan import keys
from dtgan.config.model import LADDER_STEPS
from dtgan.tracking.report.cells import ROLE_CEILING, ROLE_FLOOR, Cell, Table, scoped_column
from dtgan.tracking.report.config import ReportConfig
from dtgan.tracking.report.runs import FeatureLoader, RunRecord
from dtgan.tracking.report.significance import seed_comparisons
from dtgan.tracking.report.uncertainty import (
    Replicates,
    bootstrap_fidelity,
    fid_from_features,
    kid_from_features,
    percentile_ci,
)

FLOOR_ROW = "floor: real vs real"
CEILING_ROW = "ceiling: step-0 networks"

DECIMALS = {"fid": 2, "kid": 3}


class FidelityBootstrap:
    """Bootstrap replicates per (run, guidance, scope), computed once from the run's logged features."""

    def __init__(self, load_features: FeatureLoader, config: ReportConfig) -> None:
        self._load = load_features
        self._config = config
        self._cache: dict[tuple[str, str, str], Replicates | str] = {}
        self.sizes: dict[
            tuple[str, str, str], tuple[int, int]
        ] = {}  # (run, guidance, scope) -> (N gen, N real)
        self._floors: dict[tuple[str, str], tuple[Replicates, int, int] | None] = {}

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
                self.sizes[key] = (len(gen), len(real))
                self._cache[key] = bootstrap_fidelity(
                    gen,
                    real,
                    stream=f"{run.run_id}/{gen_path}",
                    samples=self._config.bootstrap_samples,
                    seed=self._config.bootstrap_seed,
                    kid_subset_rows=self._config.kid_subset_rows,
                )
        return self._cache[key]

    def floor(
        self, runs: Sequence[RunRecord], extractor: str, scope: str
    ) -> tuple[Replicates, int, int] | None:
        """FID/KID of disjoint real halves over ``floor_splits`` random splits, with the half sizes; from the
        real features of the first run (by id) of ``extractor`` that logged them; None when none did."""
        key = (extractor, scope)
        if key not in self._floors:
            self._floors[key] = None
            for run in sorted((r for r in runs if r.extractor == extractor), key=lambda r: r.run_id):
                real = self._load(run.run_id, keys.real_features_artifact(scope))
                if real is not None and len(real) >= 4:
                    self._floors[key] = _real_halves(real, self._config)
                    break
        return self._floors[key]


def _real_halves(real: np.ndarray, config: ReportConfig) -> tuple[Replicates, int, int]:
    half = len(real) // 2
    rng = np.random.default_rng([config.bootstrap_seed, 2])
    fid, kid = np.empty(config.floor_splits), np.empty(config.floor_splits)
    for i in range(config.floor_splits):
        order = rng.permutation(len(real))
        a, b = real[order[:half]], real[order[half : 2 * half]]
        fid[i] = fid_from_features(a, b)
        kid[i] = kid_from_features(a[: config.kid_subset_rows], b[: config.kid_subset_rows])
    return Replicates(fid, kid), half, half


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
    members = [
        r for r in runs if row_of(r) is not None and any(keys.parse_fidelity_key(k) for k in r.metrics)
    ]
    columns, cells = [], {}
    for (metric, guidance, scope), extractor in itertools.product(metrics, _extractors(members)):
        column = scoped_column(metric, metric.upper(), guidance, scope, extractor)
        columns.append(column)
        for row in rows:
            cells[(row, column.key)] = _fidelity_cell(
                [r for r in members if row_of(r) == row and r.extractor == extractor],
                row,
                metric,
                guidance,
                scope,
                extractor,
                bootstrap,
                config,
            )
    table = Table(table_id, title, rows, columns, cells)
    table.drop_empty_columns()
    _add_scale_rows(table, members, row_of, bootstrap, config)
    table.comparisons = seed_comparisons(table, config.significance_alpha)
    table.mark_significant_best()
    unmark_where_ladder_fails(table, members)
    table.notes.extend(extractor_quality_notes(members))
    return table


def extractor_quality_notes(runs: Sequence[RunRecord]) -> list[str]:
    """Per extractor, the defect classifier's accuracy on held-out real images and on its training images as its
    runs logged them (the same network per data set, so one value each, or the range)."""
    notes = []
    for extractor in _extractors(runs):
        mine = [r for r in runs if r.extractor == extractor]
        parts = []
        for key, what in (
            (keys.EVAL_DEFECT_CLASSIFIER_ACCURACY, "held-out accuracy"),
            (keys.EVAL_DEFECT_CLASSIFIER_TRAIN_ACCURACY, "train accuracy"),
        ):
            values = sorted({round(r.metrics[key], 3) for r in mine if key in r.metrics})
            if values:
                parts.append(f"{what} {values[0]:.3f}" + (f"-{values[-1]:.3f}" if len(values) > 1 else ""))
        if parts:
            notes.append(f"defect classifier of the runs measured with {extractor}: " + ", ".join(parts))
    return notes


def unmark_where_ladder_fails(table: Table, runs: Sequence[RunRecord]) -> None:
    """No winner in a column whose scope failed the validity ladder in any of its runs (the ``ladder_failing``
    tag of the evaluation): there the metric cannot tell a painted defect from none; a note says so."""
    for column in table.columns:
        failing = [
            r
            for r in runs
            if r.extractor == column.extractor
            and column.scope in keys.parse_ladder_failing(r.tags.get(keys.TAG_LADDER_FAILING))
        ]
        if not failing:
            continue
        for row in table.rows:
            table.cell(row, column.key).best = False
        table.notes.append(
            f"{column.label}: {keys.LADDER_CANNOT_TELL} (the validity ladder failed in {len(failing)} run"
            f"{'s' if len(failing) != 1 else ''}, e.g. {failing[0].run_id[:8]}); no winner is marked"
        )


def _add_scale_rows(
    table: Table,
    members: Sequence[RunRecord],
    row_of: Callable[[RunRecord], str | None],
    bootstrap: FidelityBootstrap,
    config: ReportConfig,
) -> None:
    """The floor and ceiling rows of every column, each trained cell's position between them, the notes."""
    for column in table.columns:
        metric, guidance, scope = column.metric, column.guidance, column.scope
        runs = [r for r in members if r.extractor == column.extractor]
        floor = Cell(decimals=DECIMALS[metric], role=ROLE_FLOOR)
        found = bootstrap.floor(runs, column.extractor, scope)
        if found is None:
            floor.missing_reason = (
                f"no run measured with {column.extractor} logged {keys.real_features_artifact(scope)}"
            )
        else:
            splits, half_a, half_b = found
            values = getattr(splits, metric)
            floor.values = {"real halves": float(np.mean(values))}
            floor.ci = percentile_ci(values, config.significance_alpha)
            floor.images, floor.n_real = {"real halves": half_a}, half_b
        table.cells[(FLOOR_ROW, column.key)] = floor
        init_key = keys.init_key(keys.eval_key(metric, guidance, keys.scope_product(scope)))
        ceiling = Cell(
            decimals=DECIMALS[metric],
            role=ROLE_CEILING,
            values={r.run_id: r.metrics[init_key] for r in runs if init_key in r.metrics},
        )
        if not ceiling.values:
            ceiling.missing_reason = (
                f"no run logged {init_key} (study trials do with train.checkpoint_at_start=true)"
            )
        else:
            ceiling.ci_missing_reason = "no eval CI for the ceiling: the step-0 features are not logged"
        table.cells[(CEILING_ROW, column.key)] = ceiling
        for row in table.rows:
            own = [r for r in runs if row_of(r) == row and init_key in r.metrics]
            _place(table.cell(row, column.key), own, init_key, ceiling, floor, config)
    table.scale_rows = {CEILING_ROW: ROLE_CEILING, FLOOR_ROW: ROLE_FLOOR}
    table.notes.append(
        f"scale rows on the same extractor and real set: '{FLOOR_ROW}' = two disjoint halves of the real images "
        f"({config.floor_splits} random splits; what a perfect generator scores at that N), '{CEILING_ROW}' = "
        "the same evaluation of the initialised networks (eval_init/*). 'pos' = how far a row moved from its "
        "ceiling (0; its own runs' step 0 where logged) to the floor (1); "
        f"'not trained' = pos < {config.not_trained_below:g}."
    )
    if any(table.cell(r, c.key).not_trained for r in table.rows for c in table.columns):
        flagged = sorted(
            {r for r in table.rows for c in table.columns if table.cell(r, c.key).not_trained},
            key=table.rows.index,
        )
        table.notes.append("not trained (did not move away from its initialisation): " + ", ".join(flagged))


def _place(
    cell: Cell, own_runs: Sequence[RunRecord], init_key: str, ceiling: Cell, floor: Cell, config: ReportConfig
) -> None:
    if not cell.values or not floor.values:
        return
    top = float(np.mean([r.metrics[init_key] for r in own_runs])) if own_runs else ceiling.mean
    if top is None or top <= floor.mean:
        return
    cell.position = (top - cell.mean) / (top - floor.mean)
    cell.not_trained = cell.position < config.not_trained_below


def _fidelity_cell(
    runs: list[RunRecord],
    row: str,
    metric: str,
    guidance: str,
    scope: str,
    extractor: str,
    bootstrap: FidelityBootstrap,
    config: ReportConfig,
) -> Cell:
    cell = Cell(decimals=DECIMALS[metric])
    metric_key = keys.eval_key(metric, guidance, keys.scope_product(scope))
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
    sizes = {_seed_label(r): bootstrap.sizes.get((r.run_id, guidance, scope)) for r in logged}
    if all(sizes.values()):
        cell.images = {seed: size[0] for seed, size in sizes.items()}
        cell.n_real = max(size[1] for size in sizes.values())
    return cell


def _seed_label(run: RunRecord) -> str:
    return run.seed if run.seed is not None else run.run_id


def ablation_table(
    runs: Sequence[RunRecord], bootstrap: FidelityBootstrap, config: ReportConfig
) -> Table | None:
    """Table 15: ladder steps (a)..(last present) x FID and KID for latent, reference and mix (all products)."""
    steps = [s for s in LADDER_STEPS if any(r.variant == s for r in runs)]
    if not steps:
        return None
    rows = [f"({s})" for s in LADDER_STEPS[: LADDER_STEPS.index(steps[-1]) + 1]]
    metrics = [(m, g, keys.SCOPE_ALL) for m in ("fid", "kid") for g in keys.GUIDANCES]
    return fidelity_table(
        "table15_ablation",
        "Table 15: ablation ladder, FID and KID (all products)",
        runs,
        rows,
        lambda r: f"({r.variant})" if r.variant in LADDER_STEPS else None,
        metrics,
        bootstrap,
        config,
    )


def methods_products_table(
    runs: Sequence[RunRecord], bootstrap: FidelityBootstrap, config: ReportConfig, guidance: str = "mix"
) -> Table | None:
    """Table 1: methods (variants) x FID and KID per product and for all products, for one guidance."""
    products = sorted(
        {
            parsed[2]
            for r in runs
            for k in r.metrics
            if (parsed := keys.parse_fidelity_key(k))
            and parsed[1] == guidance
            and parsed[2] != keys.SCOPE_ALL
        }
    )
    if not products:
        return None
    variants = sorted({r.variant for r in runs if r.variant is not None})
    metrics = [(m, guidance, scope) for m in ("fid", "kid") for scope in [*products, keys.SCOPE_ALL]]
    return fidelity_table(
        "table1_methods_products",
        f"Table 1: methods x products, FID and KID ({guidance} set)",
        runs,
        variants,
        lambda r: r.variant,
        metrics,
        bootstrap,
        config,
    )
