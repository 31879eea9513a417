"""The reports' reading side of the MLflow adapter: a study's runs as a table, their feature artifacts, and a
built report logged back to a run."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dtgan.errors import TrackingError, error_line
from dtgan.tracking.mlflow.fluent import fluent_store

REPORT_ARTIFACT_DIR = "report"
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def search_experiment_runs(experiment_name: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """All runs of the experiment as ``mlflow.search_runs`` returns them (columns ``metrics.*``, ``tags.*``...).

    Raises:
        TrackingError: no experiment of that name at the tracking URI.
    """
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        experiment = client.get_experiment_by_name(experiment_name)
    except MlflowException as exc:  # a server that is not MLflow's, a store MLflow cannot read
        raise TrackingError(
            f"cannot read the tracking store {client.tracking_uri}: {error_line(exc)}; check --tracking-uri"
        ) from None
    if experiment is None:
        raise TrackingError(
            f"no MLflow experiment named {experiment_name!r} at {client.tracking_uri}; "
            "check --experiment and --tracking-uri"
        )
    with fluent_store(client.tracking_uri):
        return mlflow.search_runs(
            experiment_ids=[experiment.experiment_id], order_by=["attributes.start_time ASC"]
        )


class FeatureCache:
    """Downloads a run's feature artifacts (float32 (N, D) ``.npy``) into a temporary folder, once each.

    Used as the report's ``FeatureLoader``: ``loader(run_id, "eval/features/gen_mix_all.npy")`` -> array or
    None when the run did not log that artifact.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._client = MlflowClient(tracking_uri=tracking_uri)
        self._tmp = tempfile.TemporaryDirectory(prefix="dtgan-report-")
        self._listed: dict[tuple[str, str], set[str]] = {}

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def __call__(self, run_id: str, artifact_path: str) -> np.ndarray | None:
        folder = artifact_path.rpartition("/")[0]
        if (run_id, folder) not in self._listed:
            try:
                listed = {f.path for f in self._client.list_artifacts(run_id, folder)}
            except (MlflowException, OSError):
                listed = set()
            self._listed[(run_id, folder)] = listed
        if artifact_path not in self._listed[(run_id, folder)]:
            return None
        with _quiet_downloads():
            local = self._client.download_artifacts(run_id, artifact_path, str(Path(self._tmp.name) / run_id))
        return np.load(local)


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No progress bar per feature file (they would bury the report on the terminal)."""
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous


# One copy of each table on the run: Markdown and HTML to read (the UI previews both), Parquet for tools.
# The per-variant MLflow table for the Evaluation view is the study driver's (study/variants_table.json).
RUN_REPORT_FORMATS = ("md", "html", "parquet")


def log_report_to_run(report: Any, run_id: str, tracking_uri: str | None = None) -> None:
    """Log the files of ``report`` (a ``tracking.report.Report``: ``write(folder, formats)``) in
    ``RUN_REPORT_FORMATS`` and its plots under ``report/`` of the run."""
    client = MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="dtgan-report-") as tmp:
        report.write(tmp, formats=RUN_REPORT_FORMATS)
        client.log_artifacts(run_id, tmp, artifact_path=REPORT_ARTIFACT_DIR)
