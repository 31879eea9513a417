"""Which differences between the rows of a table are results: seed-level tests, Holm-corrected per column.

The eval CI of a difference (bootstrap over images) is kept beside each comparison as a precision figure; the
verdict ``significant`` comes from the seeds only (``uncertainty.seed_test``), after Holm's correction over the
comparisons of the column. FID cells scored on different numbers of images are not compared (FID is biased by
N); KID, unbiased, is.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from dtgan.tracking.report.cells import Comparison, Table
from dtgan.tracking.report.uncertainty import POWER, holm_adjust, percentile_ci, seed_test

TEST_NAME = (
    "seed-level: paired t over shared seeds, else Welch t; Holm-corrected over the pairs of each column"
)


def _different_sizes(table: Table, row_a: str, row_b: str, column_key: str) -> str | None:
    a, b = table.cell(row_a, column_key), table.cell(row_b, column_key)
    sizes_a, sizes_b = set(a.images.values()), set(b.images.values())
    if not sizes_a or not sizes_b:
        return None  # unknown N (no features): nothing to check
    if len(sizes_a | sizes_b) > 1 or a.n_real != b.n_real:
        return (
            f"FID on different N ({a.images_text} vs {b.images_text}, real {a.n_real} vs {b.n_real}) is biased "
            "differently: not compared; the KID column is"
        )
    return None


def seed_comparisons(table: Table, alpha: float) -> list[Comparison]:
    """Every pair of trained rows of every column; sets the table's test name and its notes."""
    comparisons: list[Comparison] = []
    for column in table.columns:
        present = [r for r in table.rows if table.cell(r, column.key).values]
        pending: list[Comparison] = []
        for row_a, row_b in itertools.combinations(present, 2):
            a, b = table.cell(row_a, column.key), table.cell(row_b, column.key)
            eval_ci = (
                percentile_ci(a.replicates - b.replicates, alpha)
                if a.replicates is not None and b.replicates is not None
                else None
            )
            delta = a.mean - b.mean
            blocked = _different_sizes(table, row_a, row_b, column.key) if column.metric == "fid" else None
            test = blocked or seed_test(a.values, b.values, alpha)
            if isinstance(test, str):
                pending.append(Comparison(column.key, row_a, row_b, None, test, eval_ci, delta))
            else:
                pending.append(
                    Comparison(
                        column.key, row_a, row_b, dataclasses.replace(test, ci=eval_ci), None, eval_ci, delta
                    )
                )
        tested = [c for c in pending if c.test is not None]
        adjusted = holm_adjust([c.test.p_value for c in tested])
        holm = {id(c): p for c, p in zip(tested, adjusted, strict=True)}
        for comp in pending:
            if comp.test is not None:
                p = holm[id(comp)]
                comp = dataclasses.replace(
                    comp, test=dataclasses.replace(comp.test, p_adjusted=p, significant=p < alpha)
                )
            comparisons.append(comp)
    table.test_name = f"{TEST_NAME}, alpha={alpha}"
    table.notes += _notes(table, comparisons, alpha)
    return comparisons


def _notes(table: Table, comparisons: list[Comparison], alpha: float) -> list[str]:
    notes = []
    seeds = [table.cell(r, c.key).n for c in table.columns for r in table.rows if table.cell(r, c.key).values]
    tested = [c for c in comparisons if c.test is not None]
    if seeds and max(seeds) < 2:
        notes.append(
            "one seed per variant: no seed-level test is possible, so no winner is marked; the eval CI "
            "(bootstrap over images) only says how precisely each single run was scored."
        )
    elif comparisons:
        sizes = sorted({_pairs(comparisons, c.key) for c in table.columns} - {0})
        m = f" (m={'/'.join(map(str, sizes))})" if sizes else ""
        notes.append(
            f"significant = seed-level test (paired t over shared seeds, else Welch t) with Holm's "
            f"correction over the tested pairs of each column{m}, alpha={alpha}; the eval CI of a "
            "difference is precision over images, not evidence between recipes."
        )
    if tested:
        power = []
        for column in table.columns:
            mdd = [c.test.min_detectable for c in tested if c.column == column.key]
            if mdd:
                decimals = table.cell(table.rows[0], column.key).decimals
                power.append(f"{column.label} {np.median(mdd):.{decimals}f}")
        notes.append(
            f"smallest detectable difference (median over pairs; {100 * POWER:.0f}% power at alpha={alpha} "
            "before correction, from the observed seed spread): "
            + "; ".join(power)
            + ". 'Not significant' means not shown, not equal."
        )
    if any(c.reason and c.reason.startswith("FID on different N") for c in comparisons):
        notes.append(
            "FID cells scored on different numbers of images are not compared (FID is biased by N); "
            "KID (unbiased) is compared instead."
        )
    return notes


def _pairs(comparisons: list[Comparison], column_key: str) -> int:
    return sum(1 for c in comparisons if c.column == column_key and c.test is not None)
