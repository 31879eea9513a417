"""Make this repository's ``platform/dtgan`` importable (a `ray job submit --working-dir .` uploads only files)."""

from __future__ import annotations

import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"


def use_repository_package() -> None:
    """Put ``<repo>/platform`` first on sys.path, so the uploaded code wins over any installed dtgan."""
    if (PLATFORM / "dtgan").is_dir() and str(PLATFORM) not in sys.path:
        sys.path.insert(0, str(PLATFORM))
