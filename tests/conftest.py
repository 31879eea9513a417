"""Shared test setup: offline environment; subprocesses import dtgan from this checkout."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# MLflow 3's telemetry thread sets and unsets _MLFLOW_TELEMETRY_SESSION_ID in os.environ while other threads
# iterate it (requests' proxy lookup): a KeyError seen once in the real-server test. No network here anyway.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Subprocesses (python -m dtgan, Ray workers) must import this checkout's dtgan, not an installed one.
_src = str(REPO / "platform")
if _src not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_src, os.environ.get("PYTHONPATH")) if p)
