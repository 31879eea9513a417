"""The trial function of every study: train -> evaluate -> optional downstream study, tracked as one MLflow run.

It knows nothing of Ray: the Tune adapter passes ``TrialHooks`` that report to the scheduler, hand back a
restored checkpoint, run the training (in this process or on a Ray Train worker group) and map downstream jobs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.downstream.preflight import check_downstream
from dtgan.downstream.prepare import prepare_study_data
from dtgan.downstream.study import MapFn, run_study
from dtgan.errors import ConfigError
from dtgan.provenance import collect_provenance
from dtgan.search.intermediate import final_signal, intermediate_signal, stands_in_for
from dtgan.search.study_extractor import localise_extractor
from dtgan.search.timeline import TrialTimeline
from dtgan.storage import RunFolderSync, Storage
from dtgan.tracking.describe import FINAL_STEP, final_metrics
from dtgan.training.checkpoint import (
    checkpoint_path,
    checkpoint_step,
    latest_checkpoint,
    load_inference_nets,
)
from dtgan.training.environment import resolve_device
from dtgan.training.reporter import Reporter

if TYPE_CHECKING:
    from dtgan.evaluation.report import EvaluationOutput

log = logging.getLogger(__name__)

STEP_KEY = "step"  # the Tune result field ASHA counts in (training steps)
TRIAL_DONE_KEY = "trial_done"  # 1.0 in the final result of a trial that ran to the end
RUN_ID_KEY = "mlflow_run_id"
CHECKPOINT_KEY = "checkpoint_file"


class TrialHooks(Protocol):
    """What a trial needs from the scheduler that runs it."""

    trial_id: str | None

    def report(self, metrics: dict[str, Any]) -> None:
        """Intermediate or final result (the trial's checkpoints live in its run folder, not with the scheduler)."""

    def train(self, config: DTGANConfig, reporter: Reporter, run_dir: Path, resume: bool):
        """Run ``dtgan.training.loop.train`` (one process) or its distributed equivalent; a TrainResult."""

    def downstream_map_fn(self) -> MapFn:
        """The executor of the downstream study's classifier jobs."""


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial process needs besides its config; small and picklable."""

    tracker: Any  # dtgan.tracking.Tracker (pickles to its settings)
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


SEARCH_POINT_FILE = (
    "search_point.json"  # in a search trial's run folder: its sampled point (JSON, never pickled)
)


def canonical_point(point: dict[str, Any]) -> str:
    return json.dumps(point, sort_keys=True)


def record_search_point(ctx: TrialContext, trial_key: str, point: dict[str, Any]) -> None:
    """The trial's sampled point in its run folder in the study storage, before it trains: what ``--resume``
    reads back (``earlier_search_points``) instead of Tune's pickled searcher state."""
    folder = Storage.at(ctx.runs_dir).child(trial_key)
    if not folder.is_file(SEARCH_POINT_FILE):
        record = {"trial_key": trial_key, "point": point, "recorded_unix": time.time()}
        folder.write_bytes(SEARCH_POINT_FILE, json.dumps(record, sort_keys=True).encode())


def earlier_search_points(runs_uri: str) -> list[tuple[str, dict[str, Any]]]:
    """(trial key, point) of every search trial an earlier launch of this study started, oldest first. A record
    that is not the JSON this module writes is one line naming it."""
    runs = Storage.at(runs_uri)
    records = []
    for name in runs.list_dirs():
        if not runs.child(name).is_file(SEARCH_POINT_FILE):
            continue
        uri = runs.child(name, SEARCH_POINT_FILE).uri
        try:
            record = json.loads(runs.child(name).read_bytes(SEARCH_POINT_FILE))
            key, point, when = record["trial_key"], record["point"], float(record["recorded_unix"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{uri}: not a search point record; delete it to resume without that trial"
            ) from None
        if key != name or not isinstance(point, dict):
            raise ConfigError(f"{uri}: its trial key or point does not match its folder; delete it")
        records.append((when, key, point))
    return [(key, point) for _, key, point in sorted(records, key=lambda r: (r[0], r[1]))]


def check_study_config(config: DTGANConfig, early_stopping: bool) -> None:
    """Cross-section checks the study sections cannot make alone."""
    every = config.study.intermediate_fid_every_steps
    if every is not None and every % config.train.checkpoint_every_steps:
        raise ConfigError(
            f"study.intermediate_fid_every_steps={every} must be a multiple of "
            f"train.checkpoint_every_steps={config.train.checkpoint_every_steps} (the FID is read from checkpoints)"
        )
    objectives = config.study.objectives
    if early_stopping and every is not None and len(objectives) == 1 and not stands_in_for(config):
        # Optuna reads the objective from every intermediate result: the signal must stand in for it.
        signal = config.study.intermediate_signal
        estimates = keys.fid_key("mix") if signal == "fid_mix" else "a downstream error"
        raise ConfigError(
            f"study.intermediate_signal={signal} estimates {estimates} only, not the objective "
            f"{objectives[0].metric}; set study.intermediate_fid_every_steps=null and study.scheduler=fifo"
        )
    if early_stopping and config.study.scheduler == "asha" and every is None:
        raise ConfigError(
            "study.scheduler=asha needs study.intermediate_fid_every_steps (the early-stopping signal)"
        )
    if config.study.run_downstream:  # backbone and weights before any trial trains a generator
        check_downstream(config.downstream, checkpoint="the trial's generator")


class StudyReporter(Reporter):
    """The loop's reporter inside a trial: MLflow metrics, plus the cheap FID and a checkpoint to the scheduler."""

    def __init__(
        self,
        mlflow_reporter: Reporter,
        hooks: TrialHooks,
        total_steps: int,
        fid: Callable[[str], float] | None,
        every_steps: int | None,
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
        self.hooks.report({STEP_KEY: step, key: fid, **dict.fromkeys(self.stand_in_for, fid)})

    def close(self) -> None:
        self.mlflow_reporter.close()


def log_evaluation(tracker: Any, run_id: str, evaluation: EvaluationOutput) -> None:
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


def _evaluate_initial(config: DTGANConfig, run_dir: Path, tracker: Any, run_id: str) -> dict[str, float]:
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
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}


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
) -> dict[str, Any]:
    """Train, evaluate and (optionally) run the downstream study of one trial; its final metrics.

    ``run_name`` and ``description`` are what the MLflow UI shows for the run (default: the trial key, none).
    The headline results are also logged as ``final/...`` at step 0 (one comparable value per run), with
    the evaluated training step as the tag ``evaluated_step``; sample grids are logged as MLflow images.

    The MLflow run is found again by ``trial_key`` after a restart (no duplicates); a trial that finished in
    an earlier launch is not run again: its logged metrics are reported instead. Any error ends the run
    FAILED with the error as a tag and is raised again for the scheduler.
    """
    timeline = TrialTimeline()  # first: the imports below are part of the trial's start
    from dtgan.evaluation.evaluate import evaluate
    from dtgan.tracking import MLflowReporter

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
            metrics, tags = tracker.run_results(trial.run_id)
            final = {
                **_finite(metrics),
                TRIAL_DONE_KEY: 1.0,
                STEP_KEY: config.train.total_steps,
                RUN_ID_KEY: trial.run_id,
                CHECKPOINT_KEY: tags.get(keys.TAG_FINAL_CHECKPOINT, ""),
            }
            hooks.report(final)
            log.info(
                "trial %s finished in an earlier launch (run %s); not run again", trial_key, trial.run_id
            )
            return final
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
            reporter = StudyReporter(
                sink,
                hooks,
                config.train.total_steps,
                fid,
                ctx.intermediate_fid_every_steps,
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
        report = {
            **final,
            STEP_KEY: result.step,
            TRIAL_DONE_KEY: 1.0,
            RUN_ID_KEY: trial.run_id,
            CHECKPOINT_KEY: stored_checkpoint,
        }
        trial.finish()  # before the last report: a scheduler may end the process right after it
        timeline.mark("trial_end")
        timeline.write(run_dir)
        run_folder.push()
        hooks.report(report)
        return report
