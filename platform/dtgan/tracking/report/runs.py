"""The runs of a study as plain records: which runs a report reads and what each one logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dtgan import keys
from dtgan.tracking.report.errors import ReportError

# (run_id, artifact path) -> float32 (N, D) features, or None when the run did not log them.
FeatureLoader = Callable[[str, str], "np.ndarray | None"]


@dataclass(frozen=True)
class RunRecord:
    """One child run: its tags, params and final metrics (mlflow.search_runs columns without prefixes)."""

    run_id: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def variant(self) -> str | None:
        return self.tags.get(keys.TAG_VARIANT)

    @property
    def seed(self) -> str | None:
        return self.tags.get(keys.TAG_SEED)

    @property
    def extractor(self) -> str:
        """The feature extractor that produced this run's FID/KID; numbers of different ones never share a column."""
        name = self.tags.get(keys.TAG_FID_EXTRACTOR) or "unknown-extractor"
        weights = self.tags.get(keys.TAG_FID_WEIGHTS)
        return f"{name}/{weights}" if weights else name


@dataclass(frozen=True)
class StudyRuns:
    """The runs a report is built from: the parent run (if any) and its finished children."""

    experiment_name: str
    parent: RunRecord | None
    children: tuple[RunRecord, ...]
    skipped_unfinished: int


def _records(frame: pd.DataFrame) -> list[RunRecord]:
    records = []
    for _, row in frame.iterrows():
        tags, params, metrics = {}, {}, {}
        for column, value in row.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if column.startswith("tags."):
                tags[column[5:]] = str(value)
            elif column.startswith("params."):
                params[column[7:]] = str(value)
            elif column.startswith("metrics."):
                metrics[column[8:]] = float(value)
        records.append(
            RunRecord(str(row["run_id"]), str(row.get("status", "FINISHED")), tags, params, metrics)
        )
    return records


def select_study_runs(
    frame: pd.DataFrame, experiment_name: str, parent_run_id: str | None = None
) -> StudyRuns:
    """Pick the runs to report: the children of ``parent_run_id`` or of the latest parent run.

    Without any parent/child structure, every run of the experiment counts as a child. Runs that did not
    finish (FAILED, KILLED, RUNNING) are left out and counted for a footnote.

    Raises:
        ReportError: the experiment holds no run, or none that logged dtgan metrics.
    """
    if frame.empty:
        raise ReportError(
            f"experiment {experiment_name!r} has no runs; run a study into it first (e.g. experiments/ablation.py)"
        )
    records = _records(frame.sort_values("start_time") if "start_time" in frame else frame)
    by_id = {record.run_id: record for record in records}
    parent_ids = [r.tags[keys.TAG_PARENT_RUN_ID] for r in records if keys.TAG_PARENT_RUN_ID in r.tags]
    if parent_run_id is not None:
        if parent_run_id not in by_id:
            raise ReportError(
                f"run {parent_run_id!r} is not in experiment {experiment_name!r}; pass one of its parent runs"
            )
        chosen = parent_run_id
    elif parent_ids:
        chosen = parent_ids[-1]  # the parent of the most recently started child: the latest study
    else:
        chosen = None
    if chosen is None:
        candidates = records
    else:
        candidates = [r for r in records if r.tags.get(keys.TAG_PARENT_RUN_ID) == chosen]
    finished = [r for r in candidates if r.status == "FINISHED"]
    if not any(_is_dtgan_run(r) for r in finished):
        raise ReportError(
            f"experiment {experiment_name!r} holds no finished dtgan runs (no eval/ or downstream/ metrics with a "
            "variant tag); is it a dtgan study?"
        )
    return StudyRuns(
        experiment_name,
        by_id.get(chosen) if chosen else None,
        tuple(finished),
        len(candidates) - len(finished),
    )


def _is_dtgan_run(record: RunRecord) -> bool:
    return keys.TAG_VARIANT in record.tags and any(
        keys.parse_fidelity_key(k) or keys.parse_error_key(k) for k in record.metrics
    )
