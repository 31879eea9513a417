"""Cells, columns, comparisons and tables of a report: the numbers and how they are written."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dtgan import keys
from dtgan.tracking.report.uncertainty import PairedTest

MISSING = "—"
ROLE_TRAINED, ROLE_FLOOR, ROLE_CEILING = "trained", "floor", "ceiling"


@dataclass
class Cell:
    """One table cell: a metric over the seed runs of one row, with its CI, or the reason it is missing."""

    values: dict[str, float] = field(default_factory=dict)  # seed -> value, in the displayed unit
    decimals: int = 2
    missing_reason: str | None = None
    ci: tuple[float, float] | None = None
    ci_missing_reason: str | None = None
    replicates: np.ndarray | None = None  # (B,) bootstrap replicates of the mean over seeds
    best: bool = False
    images: dict[str, int] = field(default_factory=dict)  # seed -> N generated images scored (FID/KID)
    n_real: int | None = None  # real images scored against
    role: str = ROLE_TRAINED  # or a scale row: ROLE_FLOOR (real vs real), ROLE_CEILING (step-0 networks)
    position: float | None = None  # 0 = the ceiling (initialised networks), 1 = the floor (real vs real)
    not_trained: bool = False  # position below ReportConfig.not_trained_below

    @property
    def n_images(self) -> int | None:
        """The one N of every seed, or None when unknown or when the seeds differ (see ``images_text``)."""
        sizes = set(self.images.values())
        return sizes.pop() if len(sizes) == 1 else None

    @property
    def images_text(self) -> str:
        if not self.images:
            return ""
        low, high = min(self.images.values()), max(self.images.values())
        return f"N={low}" if low == high else f"N={low}-{high}"

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.values.values()))) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (ddof=1); None with fewer than 2 seeds."""
        return float(np.std(list(self.values.values()), ddof=1)) if self.n >= 2 else None

    @property
    def text(self) -> str:
        """``"33.36 ± 1.20 (3 seeds, N=500)"``, ``"33.36 (1 seed)"``, a scale row's ``"12.10 (real halves,
        N=250 vs 250)"`` or ``"—"``; ± is the sample std over seeds, N the images scored per run."""
        if not self.values:
            return MISSING
        d = self.decimals
        if self.role == ROLE_FLOOR:
            return f"{self.mean:.{d}f} (real halves, {self.images_text} vs {self.n_real})"
        spread = f" ± {self.std:.{d}f}" if self.std is not None else ""
        what = (
            f"{self.n} run{'s' if self.n != 1 else ''} at step 0"
            if self.role == ROLE_CEILING
            else (f"{self.n} seed{'s' if self.n != 1 else ''}")
        )
        size = f", {self.images_text}" if self.images else ""
        return f"{self.mean:.{d}f}{spread} ({what}{size})"

    @property
    def ci_text(self) -> str:
        return f"[{self.ci[0]:.{self.decimals}f}, {self.ci[1]:.{self.decimals}f}]" if self.ci else MISSING


@dataclass(frozen=True)
class Column:
    """A table column: one metric, measured by one feature extractor (never mixed)."""

    key: str
    label: str
    metric: str  # "fid", "kid", "is", "ic_lpips" or "error"
    extractor: str | None = None
    guidance: str | None = None  # FID/KID columns
    scope: str | None = None  # FID/KID columns: "all" or a product


def scoped_column(metric: str, metric_label: str, guidance: str, scope: str, extractor: str) -> Column:
    """The column of one metric x guidance x scope ("all" or a product) measured by one extractor."""
    name = f"{metric_label} {guidance}" + ("" if scope == keys.SCOPE_ALL else f" {scope}")
    return Column(
        key=f"{metric}_{guidance}_{scope}@{extractor}",
        label=f"{name} [{extractor}]",
        metric=metric,
        extractor=extractor,
        guidance=guidance,
        scope=scope,
    )


@dataclass(frozen=True)
class Comparison:
    """Two cells of one column compared; ``test`` is None when no test is possible (see ``reason``)."""

    column: str
    row_a: str
    row_b: str
    test: PairedTest | None
    reason: str | None = None
    eval_ci: tuple[float, float] | None = None  # bootstrap-over-images CI of A - B (precision, not a verdict)
    delta: float | None = None  # mean A - mean B, also when no seed-level test is possible

    @property
    def significant_text(self) -> str:
        if self.test is None:
            return "n/a"
        return "yes" if self.test.significant else "no"


@dataclass
class Table:
    """A comparison table: rows x columns of cells, pairwise comparisons per column, lower is better."""

    table_id: str
    title: str
    rows: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], Cell]
    comparisons: list[Comparison] = field(default_factory=list)
    test_name: str = ""
    notes: list[str] = field(default_factory=list)
    scale_rows: dict[str, str] = field(default_factory=dict)  # row label -> ROLE_CEILING | ROLE_FLOOR
    higher_is_better: bool = False  # IS, IC-LPIPS; FID, KID and errors are lower-is-better

    @property
    def display_rows(self) -> list[str]:
        """The ceiling row(s) first, the trained rows, the floor row(s) last: worst to best on the scale."""
        ceilings = [r for r, role in self.scale_rows.items() if role == ROLE_CEILING]
        floors = [r for r, role in self.scale_rows.items() if role == ROLE_FLOOR]
        return [*ceilings, *self.rows, *floors]

    def drop_empty_columns(self) -> None:
        """Columns no run logged leave the table; a note names them, so their absence stays visible."""
        empty = [c for c in self.columns if not any(self.cells[(r, c.key)].values for r in self.rows)]
        if empty:
            self.notes.append("not logged by any run: " + ", ".join(c.label for c in empty))
        self.columns = [c for c in self.columns if c not in empty]
        self.cells = {k: v for k, v in self.cells.items() if k[1] in {c.key for c in self.columns}}

    def cell(self, row: str, column_key: str) -> Cell:
        return self.cells[(row, column_key)]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)

    def mark_significant_best(self) -> None:
        """Mark the best mean of each column (the lowest; the highest with ``higher_is_better``), only when it
        is significantly better than every other cell."""
        pick = max if self.higher_is_better else min
        for column in self.columns:
            present = [r for r in self.rows if self.cells[(r, column.key)].values]
            if len(present) < 2:
                continue
            best = pick(present, key=lambda r: self.cells[(r, column.key)].mean)
            wins = [c for c in self.comparisons if c.column == column.key and best in (c.row_a, c.row_b)]
            lower = [
                c.test is not None
                and c.test.significant
                and ((c.test.delta > 0) if self.higher_is_better else (c.test.delta < 0)) == (c.row_a == best)
                for c in wins
            ]
            self.cells[(best, column.key)].best = len(wins) == len(present) - 1 and all(lower)
