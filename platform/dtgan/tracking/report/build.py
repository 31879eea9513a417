"""Building a report from a study's runs, and writing it (Markdown, CSV, Parquet, HTML, PNG) atomically."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from dtgan import keys
from dtgan.errors import TrackingError
from dtgan.tracking.report import render
from dtgan.tracking.report.cells import Table
from dtgan.tracking.report.classifier import arms_backbones_tables, cross_domain_tables, size_arms_tables
from dtgan.tracking.report.config import ReportConfig
from dtgan.tracking.report.diversity import diversity_table
from dtgan.tracking.report.errors import ReportError
from dtgan.tracking.report.fidelity import FidelityBootstrap, ablation_table, methods_products_table
from dtgan.tracking.report.plots import ablation_fid_figure, error_vs_size_figure
from dtgan.tracking.report.runs import FeatureLoader, StudyRuns, select_study_runs
from dtgan.tracking.report.search_plots import search_figures
from dtgan.utils.atomic import atomic_path, write_text_atomic

FORMATS = ("md", "csv", "parquet", "html")
FILE_NAMES = {"md": "report.md", "html": "report.html"}


@dataclass
class Report:
    """The tables of one study, their footnotes and comparisons, and the plots."""

    experiment_name: str
    preamble: list[str]
    tables: list[Table]
    figures: dict[str, Figure] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"dtgan report: {self.experiment_name}"

    def table(self, table_id: str) -> Table:
        return next(t for t in self.tables if t.table_id == table_id)

    def markdown(self, comparisons: bool = True) -> str:
        """The report as Markdown; ``comparisons=False`` leaves the pairwise tables to the files (terminal)."""
        return render.markdown(self.title, self.preamble, self.tables, list(self.figures), comparisons)

    def cells(self) -> pd.DataFrame:
        return render.cells_frame(self.tables)

    def comparisons(self) -> pd.DataFrame:
        return render.comparisons_frame(self.tables)

    def write(self, out_dir: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
        """Write the chosen formats and the plots under ``out_dir``; every file appears whole or not at all."""
        out = Path(out_dir)
        formats = list(formats)
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise ReportError(f"unknown report format(s) {unknown}; choose from {list(FORMATS)}")
        written = []
        if "md" in formats:
            written.append(write_text_atomic(out / "report.md", self.markdown()))
        if "html" in formats:
            page = render.html_page(self.title, self.preamble, self.tables, list(self.figures))
            written.append(write_text_atomic(out / "report.html", page))
        for name, frame in (("cells", self.cells()), ("comparisons", self.comparisons())):
            if "csv" in formats:
                with atomic_path(out / f"report_{name}.csv") as tmp:
                    frame.to_csv(tmp, index=False)
                written.append(out / f"report_{name}.csv")
            if "parquet" in formats:
                with atomic_path(out / f"report_{name}.parquet") as tmp:
                    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
                written.append(out / f"report_{name}.parquet")
        for name, figure in self.figures.items():
            with atomic_path(out / "plots" / f"{name}.png") as tmp:
                figure.savefig(tmp, format="png", dpi=100)
            written.append(out / "plots" / f"{name}.png")
        return written


def build_report_from_runs(
    study: StudyRuns, load_features: FeatureLoader, config: ReportConfig | None = None
) -> Report:
    """Every table the study's runs support, with CIs, significance marks and plots."""
    config = config or ReportConfig()
    runs = study.children
    bootstrap = FidelityBootstrap(load_features, config)
    tables: list[Table] = []
    figures: dict[str, Figure] = {}
    ablation = ablation_table(runs, bootstrap, config)
    if ablation is not None:
        tables.append(ablation)
        figures["ablation_fid"] = ablation_fid_figure(ablation)
    methods = methods_products_table(runs, bootstrap, config)
    if methods is not None:
        tables.append(methods)
    diversity = diversity_table(runs, config)
    if diversity is not None:
        tables.append(diversity)
    tables += arms_backbones_tables(runs, config)
    for table in size_arms_tables(runs, config):
        tables.append(table)
        figures[f"error_vs_size_{table.table_id.removeprefix('table3_size_arms_')}"] = error_vs_size_figure(
            table
        )
    tables += cross_domain_tables(runs, config)
    parent_tags = study.parent.tags if study.parent else {}
    if keys.TAG_SEARCH_OBJECTIVES in parent_tags or parent_tags.get(keys.TAG_STUDY, "").startswith("search"):
        figures.update(search_figures(runs, parent_tags.get(keys.TAG_SEARCH_OBJECTIVES)))
    preamble = [
        f"Study: {parent_tags.get(keys.TAG_STUDY, 'unknown')}; parent run: "
        f"{study.parent.run_id if study.parent else 'none'}; finished runs: {len(runs)}"
        + (f"; left out (not FINISHED): {study.skipped_unfinished}" if study.skipped_unfinished else "")
        + ".",
        f"Eval CI: bootstrap over the evaluation images, B={config.bootstrap_samples}, seed={config.bootstrap_seed}, "
        f"{100 * (1 - config.significance_alpha):.0f}% percentile intervals (precision of one score, not evidence "
        f"between recipes). Significance: seed-level tests only, Holm-corrected per column, "
        f"alpha={config.significance_alpha}.",
    ]
    if not tables and not figures:
        raise ReportError(
            f"experiment {study.experiment_name!r} holds runs but none with a table's metrics "
            "(eval/fid_*, downstream/error_*); is it a dtgan study?"
        )
    return Report(study.experiment_name, preamble, tables, figures)


def build_report(
    experiment_name: str,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
    config: ReportConfig | None = None,
) -> Report:
    """Read the study from MLflow (``mlflow.search_runs``) and build its report.

    Raises:
        ReportError: the experiment does not exist, is empty, or holds no dtgan runs.
    """
    from dtgan.tracking.mlflow import reading  # the report's only MLflow use (MLflow: only when reading it)

    try:
        frame = reading.search_experiment_runs(experiment_name, tracking_uri)
    except TrackingError as exc:
        raise ReportError(str(exc)) from None
    study = select_study_runs(frame, experiment_name, parent_run_id)
    with reading.FeatureCache(tracking_uri) as loader:
        return build_report_from_runs(study, loader, config)
