"""MLflow's fluent API pointed at one store for a block (``log_model`` and ``search_runs`` need it), then put back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import mlflow
from mlflow.tracking._model_registry import utils as mlflow_registry_utils
from mlflow.tracking._tracking_service import utils as mlflow_tracking_utils

_FLUENT_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def fluent_store(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (``log_model``, ``search_runs`` need it) at this store for the block, then
    restore it exactly, environment included.

    ``mlflow.set_tracking_uri`` exports ``$MLFLOW_TRACKING_URI`` for subprocesses, and ``get_tracking_uri``
    of a process that never set one returns the default ``sqlite:///<cwd>/mlflow.db``: putting that back
    would leave the variable pointing every later ``TrackingConfig()`` of the process (and its children) at
    the current folder's database. So an unset URI is put back as unset.
    """
    previous = mlflow_tracking_utils._tracking_uri, mlflow_registry_utils._registry_uri  # None = never set
    environ = {name: os.environ.get(name) for name in _FLUENT_ENV}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
