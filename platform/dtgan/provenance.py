"""Run provenance: seed, git SHA and dirty flag, library versions, host. Pure stdlib (no MLflow here)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from dtgan import __version__

# Distributions whose versions change results or behaviour.
LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "pyarrow",
    "pydantic",
    "ray",
    "mlflow",
    "optuna",
    "torch-fidelity",
    "timm",
)
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding platform/dtgan
_GIT_TIMEOUT_S = 10


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=_SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """``{"git_sha": str | None, "git_dirty": bool | None}`` of the checkout dtgan runs from."""
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return {"git_sha": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": None if status is None else bool(status)}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None

    versions["dtgan"] = __version__
    return versions


def host_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "executable": sys.executable,
    }
    try:
        import torch

        info["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        info["cuda_devices"] = []
    return info


def collect_provenance(seed: int) -> dict[str, Any]:
    """Everything needed to say where a run's numbers came from."""
    return {"seed": seed, **git_state(), "libraries": library_versions(), "host": host_info()}
