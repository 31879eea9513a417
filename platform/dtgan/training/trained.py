"""What a training run ended with, wherever it ran (``training.launch.fit``); standard library only, so that
the trial function can name it without loading the training loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Trained:
    """What a training run ended with, wherever it ran."""

    run_dir: Path
    step: int
    checkpoint_path: Path | None  # the latest checkpoint in ``run_dir`` (fetched from the storage if needed)
    metrics: dict[str, float] = field(default_factory=dict)  # the last report (averaged over the workers)
    checkpoint_uri: str | None = None  # multi-worker: the latest Ray checkpoint folder in the storage
