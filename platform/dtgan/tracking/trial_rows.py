"""A study's trials as its driver records them: one row per trial with its status, logged to the parent run as
``trials.json`` and summarised for the MLflow UI (``tracking.summary``). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TrialStatus(StrEnum):
    """How a trial ended (str-valued: the JSON and the printed table read ``completed`` etc.)."""

    COMPLETED = "completed"  # ran to the end
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA)
    FAILED = "failed"  # raised, after its retries


@dataclass
class TrialRow:
    """One trial of a study: its key, status, sampled params, final numeric metrics and where its run is."""

    trial: str  # the trial key (MLflow tag trial_key, run folder name)
    trial_id: str  # Ray Tune's id of the (last) attempt
    status: TrialStatus
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    checkpoint: str | None = None  # the final checkpoint in the study storage
    variant: str | None = None  # ladder trials: the step; the summary groups by it (else by trial)
    run_name: str | None = None  # ladder trials: what the MLflow UI lists

    def record(self) -> dict[str, Any]:
        """The JSON form in ``trials.json``: every field, ``variant``/``run_name`` only when the trial has them."""
        record = {
            "trial": self.trial,
            "trial_id": self.trial_id,
            "status": str(self.status),
            "error": self.error,
            "params": self.params,
            "metrics": self.metrics,
            "run_id": self.run_id,
            "checkpoint": self.checkpoint,
        }
        described = {"variant": self.variant, "run_name": self.run_name}
        return record | {k: v for k, v in described.items() if v is not None}
