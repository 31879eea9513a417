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
    "StudyRun": "dtgan.tracking.mlflow.runs",
    "TrialRun": "dtgan.tracking.mlflow.runs",
    "RegisteredGenerator": "dtgan.tracking.mlflow.runs",
    "MLflowReporter": "dtgan.tracking.mlflow_reporter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dtgan.tracking' has no attribute '{name}'")
