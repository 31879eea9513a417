"""Shared test setup: offline environment; subprocesses import dtgan from this checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

# Variables that MLflow's fluent API exports into os.environ (set_tracking_uri, set_registry_uri). One left by a
# test would point every later TrackingConfig() of the session, and the subprocesses it starts, at that store:
# with the default it was the checkout's mlflow.db, so a second suite run on one machine saw the first's runs.
_STORE_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _no_store_left_in_environment():
    before = {name: os.environ.get(name) for name in _STORE_ENV}
    yield
    left = {name: os.environ.get(name) for name in _STORE_ENV if os.environ.get(name) != before[name]}
    for name, value in before.items():  # put back first, so that one leak does not fail every later test
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    assert not left, f"the test left {left} in os.environ; use fluent_store or monkeypatch"


_CHECKOUT_STORES = (REPO / "mlflow.db", REPO / "mlartifacts", REPO / "mlruns")


def _stamp(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


@pytest.fixture(autouse=True, scope="session")
def _checkout_store_untouched():
    """No test may write the checkout's own MLflow store: state there survives into the next suite run."""
    before = {path: _stamp(path) for path in _CHECKOUT_STORES}
    yield
    touched = [path.name for path in _CHECKOUT_STORES if _stamp(path) != before[path]]
    assert not touched, f"a test wrote the checkout's MLflow store {touched}; give it a tmp store"
