"""Where a trial's time goes: wall and CPU timestamps at its phases, written to ``runs/<trial_key>/timeline.json``.

``trial start -> first training step`` and ``last training step -> trial end`` are the study's per-trial
overhead (the target is <= 10 s each); ``benchmarks/trial_overhead.py --study`` reads this file.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dtgan import keys
from dtgan.utils.atomic import atomic_path

TIMELINE_FILE = "timeline.json"


def _now() -> dict[str, float]:
    # wall: comparable across the processes of one machine (driver vs trial); cpu: this process, all threads.
    return {"wall_s": time.time(), "cpu_s": time.process_time()}


class TrialTimeline:
    """Named marks plus the first and the last two training reports (step, arrival, ``train/step_ms``)."""

    def __init__(self) -> None:
        self.marks: dict[str, dict[str, float]] = {"trial_start": _now()}
        self.reports: list[dict[str, float]] = []  # the first report, then the last two

    def mark(self, name: str) -> None:
        self.marks[name] = _now()

    @contextlib.contextmanager
    def phase(self, start: str | None = None, end: str | None = None) -> Iterator[None]:
        """A block as a phase: mark ``start`` on entry and ``end`` when it completes (not when it raises:
        a failed trial writes no timeline)."""
        if start is not None:
            self.mark(start)
        yield
        if end is not None:
            self.mark(end)

    def training_report(self, step: int, metrics: dict[str, float]) -> None:
        """Called at every training report; keeps the first and the last two (the last step's own time is
        the last report's ``train/step_ms`` when the loop reports every step)."""
        record = {"step": step, "step_ms": float(metrics.get(keys.TRAIN_STEP_MS, float("nan"))), **_now()}
        if len(self.reports) == 3:
            del self.reports[1]
        self.reports.append(record)

    def as_dict(self) -> dict[str, Any]:
        return {
            "marks": self.marks,
            "first_report": self.reports[0] if self.reports else None,
            "last_reports": self.reports[1:] if len(self.reports) > 1 else self.reports[:1],
        }

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / TIMELINE_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.as_dict(), indent=2))
        return path
