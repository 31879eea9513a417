"""The one door to training: ``fit`` trains a config in the calling process or on Ray Train workers.

``distributed.workers`` decides, for ``dtgan train`` and for every study trial alike (``trains_in_process``):

- 0 or 1: in the calling process (``training.loop.train``), without Ray: a worker group of one would only add
  Ray's start-up, and a study trial that trains itself *is* its one worker (it holds the worker's CPU/GPU);
- 2 or more: on that many Ray Train workers (``training.ray_train.fit_distributed``, which imports Ray only
  when it runs), checkpoints in Ray's storage, a failed worker group recovered from the latest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.training.checkpoint import latest_checkpoint
from dtgan.training.loop import train
from dtgan.training.ray_train import fetch_checkpoint, fit_distributed
from dtgan.training.reporter import Reporter
from dtgan.training.trained import Trained


def trains_in_process(config: DTGANConfig) -> bool:
    """``distributed.workers <= 1``: the calling process trains; more workers train on Ray Train."""
    return config.distributed.workers <= 1


@dataclass(frozen=True)
class WorkerGroupRun:
    """Where a multi-worker run keeps Ray Train's state; in-process training ignores it.

    ``run_name`` (default ``train.run_name`` or the derived name) names the run in ``storage_path`` (default
    ``distributed.storage_path`` or ``train.out_dir``); ``resume``: ``"auto"`` continues a stored run of that
    name if there is one (a restarted study trial), None takes ``fit``'s ``resume`` (True requires one, False
    refuses to overwrite one). ``progress`` logs step, images/s and the main losses as the workers report.
    """

    run_name: str | None = None
    storage_path: str | None = None
    resume: Literal["auto"] | None = None
    progress: bool = True


def fit(
    config: DTGANConfig,
    reporter: Reporter | None = None,
    run_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    *,
    workers: WorkerGroupRun = WorkerGroupRun(),
) -> Trained:
    """Train ``config`` to ``train.total_steps`` where ``distributed.workers`` says (``trains_in_process``).

    ``reporter`` receives every report of the run: in process as the loop reports, from Ray Train workers
    replayed from the stored history after the fit (the Train controller runs elsewhere); None writes
    metrics.jsonl and shows progress. It is closed at the end either way. ``resume``: True continues the
    run's latest checkpoint; a file (in process only) continues that checkpoint.
    """
    if trains_in_process(config):
        local = train(config, reporter, run_dir, resume)
        return Trained(local.run_dir, local.step, local.checkpoint_path, local.metrics)
    if resume not in (True, False):
        raise ConfigError(
            f"resume from {resume}: a checkpoint file continues a run in one process (distributed.workers <= 1); "
            f"on {config.distributed.workers} Ray Train workers resume alone (--resume): the run continues from "
            "its latest checkpoint in the storage"
        )
    try:
        stored = fit_distributed(
            config,
            run_name=workers.run_name,
            storage_path=workers.storage_path,
            resume=workers.resume or bool(resume),
            run_dir=run_dir,
            progress=workers.progress,
        )
        # Rank 0 wrote the run folder on its own node: the checkpoint comes from Ray's storage when missing here.
        if latest_checkpoint(stored.run_dir) is None and stored.checkpoint_uri is not None:
            fetch_checkpoint(stored.checkpoint_uri, stored.run_dir)
        if reporter is not None:
            for row in stored.metrics_history:
                train_terms = {k: v for k, v in row.items() if k.startswith(keys.TRAIN_PREFIX)}
                reporter.report(int(row["step"]), train_terms, None)
    finally:
        if reporter is not None:
            reporter.close()
    return Trained(
        stored.run_dir, stored.step, latest_checkpoint(stored.run_dir), stored.metrics, stored.checkpoint_uri
    )
