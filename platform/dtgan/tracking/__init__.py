"""Tracking: the MLflow adapter and the comparison reports (studies as parent runs, trials nested).

Names are imported lazily so that ``dtgan.tracking.locations`` stays importable without importing MLflow (about a
second). Provenance (seed, git state, versions) is ``dtgan.provenance``, below both training and tracking.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "init_tracking": "dtgan.tracking.mlflow.runs",
    "Tracker": "dtgan.tracking.mlflow.runs",
    "StudyRun": "dtgan.tracking.tracker",
    "TrialRun": "dtgan.tracking.tracker",
    "RegisteredGenerator": "dtgan.tracking.tracker",
    "MLflowReporter": "dtgan.tracking.mlflow_reporter",
    "RunTracker": "dtgan.tracking.tracker",
    "OpenTrial": "dtgan.tracking.tracker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dtgan.tracking' has no attribute '{name}'")
