"""What studies and trials ask of a run tracker, without importing MLflow: the ``RunTracker`` protocol
(``tracking.mlflow.runs.Tracker`` is the implementation) and the records it hands back.

A study's driver, its trials and the training reporter are typed against this protocol, so a reader (and a type
checker) sees every hop to the tracker while MLflow loads only where a ``Tracker`` is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

EndStatus = Literal["FINISHED", "FAILED", "KILLED"]  # MLflow's terminal run statuses
END_STATUSES: tuple[str, ...] = get_args(EndStatus)


@dataclass(frozen=True)
class StudyRun:
    """The parent run of a study; ``resumed`` when an earlier launch with the same resume key made it."""

    run_id: str
    experiment_id: str
    experiment_name: str
    resumed: bool


@dataclass(frozen=True)
class TrialRun:
    """The child run of one trial.

    ``finished`` means an earlier launch already completed this trial (its run stays FINISHED and
    untouched): the study should skip it. ``resumed`` means an unfinished run was reopened (RUNNING).
    """

    run_id: str
    trial_key: str
    resumed: bool
    finished: bool


@dataclass(frozen=True)
class RegisteredGenerator:
    """A generator version in the MLflow model registry (load it with ``models:/<name>/<version>``)."""

    name: str
    version: int
    source: str


@dataclass
class OpenTrial:
    """The run of a trial inside ``with tracker.trial(...)``; ``finish()`` ends it FINISHED before the block
    does (e.g. before a last report after which a scheduler may end the process)."""

    tracker: RunTracker
    run: TrialRun
    ended: bool = False

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def finished(self) -> bool:
        """An earlier launch completed this trial: skip it (its run stays untouched)."""
        return self.run.finished

    def finish(self) -> None:
        """End the run FINISHED now; idempotent (the block's normal exit then ends nothing)."""
        if not self.ended and not self.run.finished:
            self.tracker.end_run(self.run.run_id)
        self.ended = True


class SystemMonitor(Protocol):
    def finish(self) -> None: ...


class RunTracker(Protocol):
    """A study's parent run and its trials' child runs in one store; picklable into trial processes."""

    tracking_uri: str

    def experiment_id(self, name: str) -> str: ...

    def start_study(
        self,
        study: str,
        *,
        resume_key: str,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> StudyRun: ...

    def trial(
        self, parent_run_id: str, trial_key: str, config: Any, **start: Any
    ) -> AbstractContextManager[OpenTrial]: ...

    def end_run(
        self, run_id: str, status: EndStatus = "FINISHED", error: BaseException | str | None = None
    ) -> None: ...

    def close_orphans(self, parent_run_id: str) -> list[str]: ...

    def run_tag(self, run_id: str, key: str) -> str | None: ...

    def run_results(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]: ...

    def set_tags(self, run_id: str, tags: Mapping[str, Any] | None) -> None: ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None: ...

    def log_metric_batch(self, run_id: str, rows: Iterable[tuple[int, Mapping[str, float]]]) -> None: ...

    def log_artifacts(
        self, run_id: str, paths: str | Path | Iterable[str | Path], artifact_path: str | None = None
    ) -> None: ...

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None: ...

    def log_table(self, run_id: str, table: Any, artifact_file: str) -> None: ...

    def log_dataset(self, run_id: str, path: str, context: str = "training") -> None: ...

    def log_sample_grids(self, run_id: str, folder: str | Path) -> int: ...

    def log_best_checkpoint(self, run_id: str, checkpoint_path: str | Path) -> RegisteredGenerator | None: ...

    def start_system_metrics(self, run_id: str) -> SystemMonitor | None: ...
