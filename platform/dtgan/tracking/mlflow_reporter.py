"""A training-loop Reporter that writes to an MLflow run: batched metrics, checkpoints only when asked."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from dtgan import keys
from dtgan.tracking.tracker import RunTracker

CheckpointPolicy = Literal["never", "final", "every"]
# MLflow accepts at most 1000 metrics per log_batch; flush before the buffer needs a second call.
_MAX_BUFFERED_METRICS = 1000


class MLflowReporter:
    """Duck-types ``dtgan.training.reporter.Reporter``: ``report(step, metrics, checkpoint_path)``.

    Metrics are buffered and written with ``log_batch`` every ``flush_every_s`` seconds, when 1000 are
    waiting, before every checkpoint is written (``before_checkpoint``: a run resumed from a checkpoint has
    the metrics up to its step), at every checkpoint reported, and at ``close()``. Checkpoints are uploaded per ``checkpoints``:
    ``"never"``, ``"final"`` (the last one reported, at ``close()``), or ``"every"`` one reported.
    Ending the run stays with the caller (``tracker.end_run``), who knows whether the trial failed.
    """

    def __init__(
        self,
        tracker: RunTracker,
        run_id: str,
        *,
        checkpoints: CheckpointPolicy = "final",
        flush_every_s: float = 5.0,
    ) -> None:
        if checkpoints not in ("never", "final", "every"):
            raise ValueError(f"checkpoints must be never, final or every, got {checkpoints!r}")
        if flush_every_s < 0:
            raise ValueError(f"flush_every_s must be >= 0, got {flush_every_s}")
        self.tracker = tracker
        self.run_id = run_id
        self.checkpoints = checkpoints
        self.flush_every_s = flush_every_s
        self.last_checkpoint_path: str | None = None
        self._rows: list[tuple[int, dict[str, float]]] = []
        self._buffered = 0
        self._last_flush = time.monotonic()
        self._closed = False
        self._written_step: int | None = None  # metrics written by before_checkpoint, not to buffer again
        self._monitor = tracker.start_system_metrics(run_id)

    def report(self, step: int, metrics: Mapping[str, float], checkpoint_path: str | None = None) -> None:
        """Buffer ``metrics`` of ``step``; remember or upload ``checkpoint_path`` per the policy."""
        if self._closed:
            raise RuntimeError("MLflowReporter.report called after close()")
        already_written, self._written_step = self._written_step == step, None
        if metrics and not already_written:
            self._rows.append((int(step), {k: float(v) for k, v in metrics.items()}))
            self._buffered += len(metrics)
        if checkpoint_path is not None:
            self.last_checkpoint_path = str(checkpoint_path)
            self.flush()
            if self.checkpoints == "every":
                self.tracker.log_artifacts(self.run_id, [checkpoint_path], keys.CHECKPOINT_DIR)
        elif (
            self._buffered >= _MAX_BUFFERED_METRICS
            or time.monotonic() - self._last_flush >= self.flush_every_s
        ):
            self.flush()

    def before_checkpoint(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write ``metrics`` of ``step`` and everything buffered before the checkpoint of ``step`` exists; the
        next ``report`` of ``step`` (the loop's, with the checkpoint path) does not log them again."""
        if self._closed:
            raise RuntimeError("MLflowReporter.before_checkpoint called after close()")
        if metrics:
            self._rows.append((int(step), {k: float(v) for k, v in metrics.items()}))
        self.flush()
        self._written_step = int(step)

    def flush(self) -> None:
        """Write the buffered metrics now."""
        if self._rows:
            self.tracker.log_metric_batch(self.run_id, self._rows)
            self._rows, self._buffered = [], 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush, upload the final checkpoint (policy ``final``), stop system metrics. Idempotent."""
        if self._closed:
            return
        self.flush()
        if (
            self.checkpoints == "final"
            and self.last_checkpoint_path
            and Path(self.last_checkpoint_path).is_file()
        ):
            self.tracker.log_artifacts(self.run_id, [self.last_checkpoint_path], keys.CHECKPOINT_DIR)
        if self._monitor is not None:
            self._monitor.finish()
        self._closed = True

    def __enter__(self) -> MLflowReporter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
