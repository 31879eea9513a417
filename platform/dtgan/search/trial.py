"""The trial function of every study: train -> evaluate -> optional downstream study, tracked as one MLflow run;
what it reports (``FinalReport``) and what the driver reads back of it (``TrialOutcome``).

It knows nothing of Ray: the Tune adapter passes ``TrialHooks`` that report to the scheduler, hand back a
restored checkpoint, run the training (in this process or on a Ray Train worker group) and map downstream jobs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.downstream.prepare import prepare_study_data
from dtgan.downstream.study import MapFn, run_study
from dtgan.provenance import collect_provenance
from dtgan.search.intermediate import intermediate_signal
from dtgan.search.search_points import canonical_point
from dtgan.search.signals import final_signal, stands_in_for
from dtgan.search.study_extractor import localise_extractor
from dtgan.search.timeline import TrialTimeline
from dtgan.storage import RunFolderSync, Storage
from dtgan.tracking.describe import FINAL_STEP, final_metrics
from dtgan.tracking.mlflow_reporter import MLflowReporter
from dtgan.tracking.tracker import RunTracker
from dtgan.tracking.trial_rows import TrialStatus
from dtgan.training.checkpoint import (
    checkpoint_path,
    checkpoint_step,
    latest_checkpoint,
    load_inference_nets,
)
from dtgan.training.environment import resolve_device
from dtgan.training.reporter import Reporter
from dtgan.training.trained import Trained

if TYPE_CHECKING:
    from dtgan.evaluation.report import EvaluationOutput

log = logging.getLogger(__name__)

STEP_KEY = "step"  # the Tune result field ASHA counts in (training steps)
TRIAL_DONE_KEY = "trial_done"  # 1.0 in the final result of a trial that ran to the end
RUN_ID_KEY = "mlflow_run_id"
CHECKPOINT_KEY = "checkpoint_file"
TRIAL_KEY_KEY = "trial_key"  # in every result of a trial: the driver's outcome carries the key from there


@dataclass(frozen=True)
class FinalReport:
    """A trial's last result: its final metrics, the evaluated step, its MLflow run and final checkpoint."""

    trial_key: str
    step: int
    run_id: str
    checkpoint: str  # in the study storage ("" when an earlier launch logged none)
    metrics: dict[str, float]

    def result(self) -> dict[str, Any]:
        """The scheduler's form: the metrics and the trial's fields under their result keys."""
        return {
            **self.metrics,
            STEP_KEY: self.step,
            TRIAL_DONE_KEY: 1.0,
            RUN_ID_KEY: self.run_id,
            CHECKPOINT_KEY: self.checkpoint,
            TRIAL_KEY_KEY: self.trial_key,
        }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True)
class TrialOutcome:
    """One trial as the driver sees it after the scheduler ran it (``from_result``: its last result)."""

    trial_key: str
    trial_id: str
    status: TrialStatus
    params: dict[str, Any]  # the sampled point of a search trial (dotted key -> value)
    metrics: dict[str, float]  # the numeric values of its last result
    run_id: str | None = None
    checkpoint: str | None = None
    error: str | None = None

    @classmethod
    def from_result(
        cls,
        result: Mapping[str, Any],
        *,
        trial_id: str,
        planned_key: str,
        params: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> TrialOutcome:
        """From the trial's last result (``FinalReport.result()`` when it ran to the end, an intermediate one
        when the scheduler stopped it, none when it failed first): ``planned_key`` names a trial whose
        results do not (it failed before its first report)."""
        completed = error is None and result.get(TRIAL_DONE_KEY) == 1.0
        status = (
            TrialStatus.COMPLETED if completed else (TrialStatus.FAILED if error else TrialStatus.STOPPED)
        )
        return cls(
            trial_key=str(result.get(TRIAL_KEY_KEY) or planned_key),
            trial_id=trial_id,
            status=status,
            params=dict(params or {}),
            metrics={k: v for k, v in result.items() if _number(v)},
            run_id=result.get(RUN_ID_KEY),
            checkpoint=result.get(CHECKPOINT_KEY),
            error=error,
        )


class TrialHooks(Protocol):
    """What a trial needs from the scheduler that runs it."""

    trial_id: str | None

    def report(self, metrics: dict[str, Any]) -> None:
        """Intermediate or final result (the trial's checkpoints live in its run folder, not with the scheduler)."""

    def train(self, config: DTGANConfig, reporter: Reporter, run_dir: Path, resume: bool) -> Trained:
        """Train through ``dtgan.training.launch.fit`` (in this process or on Ray Train workers)."""

    def downstream_map_fn(self) -> MapFn:
        """The executor of the downstream study's classifier jobs."""


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial process needs besides its config; small and picklable."""

    tracker: RunTracker  # dtgan.tracking.mlflow.runs.Tracker (pickles to its settings)
    parent_run_id: str
    study: str
    runs_dir: str  # absolute: <storage_path>/<study run>/runs; each trial writes runs/<trial_key>/
    intermediate_fid_every_steps: int | None
    intermediate_fid_images_per_cell: int
    git_state: dict[str, Any]  # of the driver's checkout: trial workers run a shipped copy without .git
    # A resumed search: (trial key, canonical JSON of its sampled point) of the earlier launch's trials, whose
    # points the searcher proposes again so that they keep their keys, MLflow runs and checkpoints.
    earlier_points: tuple[tuple[str, str], ...] = ()

    def earlier_trial_key(self, point: dict[str, Any]) -> str | None:
        canonical = canonical_point(point)
        return next((key for key, known in self.earlier_points if known == canonical), None)


class TrialReporter(Reporter):
    """The loop's reporter inside a trial: MLflow metrics, plus the cheap FID and a checkpoint to the scheduler."""

    def __init__(
        self,
        mlflow_reporter: Reporter,
        hooks: TrialHooks,
        total_steps: int,
        fid: Callable[[str], float] | None,
        every_steps: int | None,
        trial_key: str,
        stand_in_for: tuple[str, ...] = (),
        timeline: TrialTimeline | None = None,
        run_folder: RunFolderSync | None = None,
    ) -> None:
        self.mlflow_reporter = mlflow_reporter
        self.run_folder = (
            run_folder  # pushed to the study storage at every checkpoint (a lost node loses nothing)
        )
        self.timeline = timeline  # arrival times of the training reports (meaningful for in-process training)
        self.hooks = hooks
        self.total_steps = total_steps
        self.fid = fid
        self.every_steps = every_steps
        self.trial_key = trial_key  # named in every result (the driver's outcome carries it)
        self.stand_in_for = stand_in_for  # objectives the cheap FID stands in for in intermediate results

    def report(self, step: int, metrics: dict[str, float], checkpoint_path: str | None) -> None:
        if self.timeline is not None:
            self.timeline.training_report(step, metrics)
        self.mlflow_reporter.report(step, metrics, checkpoint_path)
        if checkpoint_path is not None and self.run_folder is not None:
            self.run_folder.push()
        if checkpoint_path is None or step >= self.total_steps or self.fid is None or step % self.every_steps:
            return  # the final checkpoint is reported with the evaluation
        fid = self.fid(checkpoint_path)
        key = getattr(self.fid, "key", keys.SEARCH_INTERMEDIATE_FID)  # the signal's own result key
        self.mlflow_reporter.report(step, {key: fid}, None)
        self.hooks.report(
            {STEP_KEY: step, TRIAL_KEY_KEY: self.trial_key, key: fid, **dict.fromkeys(self.stand_in_for, fid)}
        )

    def before_checkpoint(self, step: int, metrics: dict[str, float]) -> None:
        self.mlflow_reporter.before_checkpoint(step, metrics)

    def close(self) -> None:
        self.mlflow_reporter.close()


def log_evaluation(tracker: RunTracker, run_id: str, evaluation: EvaluationOutput) -> None:
    """The evaluation folder under ``eval/<folder name>/`` (JSON, grids) and its feature arrays under
    ``eval/features/``, where the report's bootstrap reads them (uploaded once, not also inside the folder)."""
    out_dir = evaluation.out_dir
    tracker.log_artifacts(
        run_id,
        [p for p in sorted(out_dir.iterdir()) if p.name != keys.FEATURES_DIR],
        f"{keys.EVAL_ARTIFACT_DIR}/{out_dir.name}",
    )
    if evaluation.feature_paths:
        tracker.log_artifacts(run_id, list(evaluation.feature_paths), keys.FEATURES_ARTIFACT_DIR)


def _evaluate_initial(
    config: DTGANConfig, run_dir: Path, tracker: RunTracker, run_id: str
) -> dict[str, float]:
    """With ``train.checkpoint_at_start``: the same evaluation of the step-0 checkpoint, as ``eval_init/...``
    metrics (its JSON under ``eval_init/``); nothing when the option is off or the checkpoint is gone."""
    from dtgan.evaluation.evaluate import evaluate

    initial = checkpoint_path(run_dir, 0)
    if not config.train.checkpoint_at_start or not initial.is_file():
        return {}
    evaluation = evaluate(
        initial, config.evaluation, data_path=config.data.path, out_dir=run_dir / "evaluation" / "init"
    )
    tracker.log_artifacts(run_id, [evaluation.report_path], keys.EVAL_INIT_ARTIFACT_DIR)
    return {
        keys.init_key(k): v for k, v in _finite(evaluation.metrics).items() if k.startswith(keys.EVAL_PREFIX)
    }


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if _number(v)}


def _downstream(
    config: DTGANConfig, checkpoint: Path, run_folder: RunFolderSync, map_fn: MapFn
) -> tuple[dict[str, float], Path]:
    """The classifier study of this trial's generator; its ``_mean``/``_std`` metrics (percent). The study data
    goes to the study storage first: the classifier jobs may run on other nodes."""
    run_dir = run_folder.local

    cfg = config.downstream
    nets = None
    if cfg.synthetic_arms:
        nets = load_inference_nets(checkpoint, device=resolve_device(cfg.device, "downstream.device"))
    study_data_path = run_dir / "downstream" / "study_data.pt"
    prepare_study_data(
        cfg, config.data.path, nets=nets, checkpoint=str(checkpoint), crop_paste_cfg=config.crop_paste
    ).save(study_data_path)
    del nets
    run_folder.push()
    out_path = run_dir / "downstream" / "downstream.json"
    payload = run_study(cfg, run_folder.stored_uri(study_data_path), map_fn=map_fn, out_path=out_path)
    return payload["metrics"], out_path


def run_trial(
    config: DTGANConfig,
    trial_key: str,
    variant: str,
    ctx: TrialContext,
    hooks: TrialHooks,
    *,
    run_name: str | None = None,
    description: str | None = None,
) -> FinalReport:
    """Train, evaluate and (optionally) run the downstream study of one trial; its final report.

    ``run_name`` and ``description`` are what the MLflow UI shows for the run (default: the trial key, none).
    The headline results are also logged as ``final/...`` at step 0 (one comparable value per run), with
    the evaluated training step as the tag ``evaluated_step``; sample grids are logged as MLflow images.

    The MLflow run is found again by ``trial_key`` after a restart (no duplicates); a trial that finished in
    an earlier launch is not run again: its logged metrics are reported instead. Any error ends the run
    FAILED with the error as a tag and is raised again for the scheduler.
    """
    timeline = TrialTimeline()  # first: the imports below are part of the trial's start
    from dtgan.evaluation.evaluate import evaluate

    timeline.mark("imported")
    tracker = ctx.tracker
    tags = {keys.TAG_VARIANT: variant, keys.TAG_STUDY: ctx.study, keys.TAG_RAY_TRIAL_ID: hooks.trial_id}
    with tracker.trial(
        ctx.parent_run_id,
        trial_key,
        config,
        tags=tags,
        provenance={**collect_provenance(config.train.seed), **ctx.git_state},
        run_name=run_name,
        description=description,
    ) as trial:
        if trial.finished:
            logged_metrics, logged_tags = tracker.run_results(trial.run_id)
            done = FinalReport(
                trial_key,
                config.train.total_steps,
                trial.run_id,
                logged_tags.get(keys.TAG_FINAL_CHECKPOINT, ""),
                _finite(logged_metrics),
            )
            hooks.report(done.result())
            log.info(
                "trial %s finished in an earlier launch (run %s); not run again", trial_key, trial.run_id
            )
            return done
        # The run folder: in the study storage itself, or (a bucket) node-local and mirrored to it.
        config = localise_extractor(config)  # the study's extractor, fetched from its storage when remote
        run_folder = RunFolderSync(Storage.at(ctx.runs_dir).child(trial_key))
        run_dir = run_folder.local
        if latest_checkpoint(run_dir) is None:
            run_folder.pull()  # restarted on a new node (a preempted one): continue from the stored checkpoint
        timeline.mark("mlflow_run_started")
        tracker.log_dataset(trial.run_id, config.data.path)
        resumed_from = latest_checkpoint(run_dir)
        resume = resumed_from is not None
        if resume:
            step = checkpoint_step(resumed_from)
            earlier = tracker.run_tag(trial.run_id, keys.TAG_RESUMED_AT_STEPS)
            tracker.set_tags(
                trial.run_id, {keys.TAG_RESUMED_AT_STEPS: ",".join(filter(None, (earlier, str(step))))}
            )
            log.warning("trial %s continues from its stored checkpoint at step %d", trial_key, step)
        fid = None
        if ctx.intermediate_fid_every_steps is not None:
            fid = intermediate_signal(config, ctx.intermediate_fid_images_per_cell)
        # metrics_flushed: once the MLflow reporter has written its last batch
        with (
            timeline.phase(end="metrics_flushed"),
            MLflowReporter(tracker, trial.run_id, checkpoints="never") as sink,
        ):
            stand_in = stands_in_for(config)
            reporter = TrialReporter(
                sink,
                hooks,
                config.train.total_steps,
                fid,
                ctx.intermediate_fid_every_steps,
                trial_key,
                stand_in,
                timeline,
                run_folder,
            )
            with timeline.phase("train_start", "train_end"):
                result = hooks.train(config, reporter, run_dir, resume)
        checkpoint = result.checkpoint_path or latest_checkpoint(run_dir)
        with timeline.phase(end="evaluation_end"):
            evaluation = evaluate(
                checkpoint,
                config.evaluation,
                data_path=config.data.path,
                out_dir=run_dir / "evaluation" / "final",
            )
        run_folder.push()
        stored_checkpoint = run_folder.stored_uri(checkpoint)  # where the driver and later commands find it
        tracker.set_tags(trial.run_id, {**evaluation.tags, keys.TAG_FINAL_CHECKPOINT: stored_checkpoint})
        final = _finite(evaluation.metrics)
        log_evaluation(tracker, trial.run_id, evaluation)
        final.update(_evaluate_initial(config, run_dir, tracker, trial.run_id))
        if config.study.run_downstream:
            with timeline.phase(end="downstream_end"):
                downstream_metrics, downstream_json = _downstream(
                    config, Path(checkpoint), run_folder, hooks.downstream_map_fn()
                )
                final.update(_finite(downstream_metrics))
                tracker.log_artifacts(trial.run_id, [downstream_json], keys.DOWNSTREAM_ARTIFACT_DIR)
        tracker.log_metrics(trial.run_id, final, step=result.step)
        tracker.log_metrics(trial.run_id, final_metrics(final), step=FINAL_STEP)
        tracker.set_tags(trial.run_id, {keys.TAG_EVALUATED_STEP: result.step})
        samples = run_dir / "samples"
        if samples.is_dir():
            tracker.log_sample_grids(trial.run_id, samples)
        final.update(final_signal(config, final))  # the last rung compares the full evaluation's signal
        report = FinalReport(trial_key, result.step, trial.run_id, stored_checkpoint, final)
        trial.finish()  # before the last report: a scheduler may end the process right after it
        timeline.mark("trial_end")
        timeline.write(run_dir)
        run_folder.push()
        hooks.report(report.result())
        return report
