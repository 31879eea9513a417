"""The Ray Tune + Optuna adapter: the only module importing ``ray.tune`` and ``optuna``.

Placement (docs/interfaces.md "Trial placement"): a trial that trains in its own process (``distributed.workers
<= 1``) *is* the training worker: it holds ``{CPU: distributed.cpus_per_worker, GPU: study.gpus_per_trial}`` and
nothing else, one bundle any worker node of the cluster can hold. A multi-worker trial holds only the custom
driver resource (``study.driver_resource``, offered by the head, which has no CPU) and launches a Ray Train
``TorchTrainer`` from it (Train V2's supported pattern), whose workers take the ``distributed`` resources on the
GPU nodes; a driver never holds a CPU, so a 2-core machine never deadlocks. A trial whose node is lost (a
preempted spot instance) is retried ``study.max_trial_failures`` times and resumes from its last stored
checkpoint. The dashboard stays on: it frees the workers of trials ASHA stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ray
import ray.util
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from dtgan.config.loader import nest
from dtgan.config.root import DTGANConfig
from dtgan.config.study import StudyConfig
from dtgan.downstream.study import MapFn
from dtgan.errors import ConfigError, error_line
from dtgan.search.ladder import TrialSpec, apply_overrides
from dtgan.search.search_points import record_search_point
from dtgan.search.signals import signal_key
from dtgan.search.spaces import Dimension
from dtgan.search.trial import STEP_KEY, TrialContext, TrialOutcome, run_trial
from dtgan.tracking.describe import search_description
from dtgan.training import ray_train
from dtgan.training.launch import WorkerGroupRun, fit, trains_in_process
from dtgan.training.reporter import Reporter
from dtgan.training.trained import Trained

log = logging.getLogger(__name__)

# Driver slots offered by a local Ray: trial drivers hold one each, never a CPU.
_MIN_LOCAL_DRIVER_SLOTS = 4


def start_ray(study: StudyConfig, address: str | None = None, temp_dir: str | None = None) -> bool:
    """Connect to Ray for a study (``ray_train.connect_ray``: ``address``, ``$RAY_ADDRESS``, else a local Ray).

    The local Ray has ``study.local_num_cpus`` CPUs and offers ``study.driver_resource`` slots for trial
    drivers. Returns False when this process was already connected (the caller then leaves Ray running).
    """
    slots = max(_MIN_LOCAL_DRIVER_SLOTS, 2 * study.max_concurrent_trials)
    return ray_train.connect_ray(
        address=address,
        num_cpus=study.local_num_cpus,
        resources={study.driver_resource: slots},
        temp_dir=temp_dir,
    )


@contextlib.contextmanager
def ray_session(
    study: StudyConfig, address: str | None = None, temp_dir: str | None = None
) -> Iterator[bool]:
    """Ray connected for the block (``start_ray``); stopped at its end when the block started it. Yields whether
    it started Ray (False: already connected)."""
    started = start_ray(study, address=address, temp_dir=temp_dir)
    try:
        yield started
    finally:
        if started:
            stop_ray()


def check_cluster_resources(config: DTGANConfig) -> None:
    """Refuse a cluster whose nodes offer none of the driver resource a multi-worker trial holds (Tune would wait
    for ever: no autoscaler node type adds it); CPU/GPU may still come from the autoscaler, so only warn for them."""
    offered = ray.cluster_resources()
    needed = trial_resources(config)
    slot = config.study.driver_resource
    if slot in needed and offered.get(slot, 0.0) < needed[slot]:
        raise ConfigError(
            f"the Ray cluster offers no '{slot}' resource, which every trial driver holds (study.driver_resource); "
            f"start the head with `ray start --head --resources '{{\"{slot}\": 4}}'` (one per concurrent trial)"
        )
    short = {k: v for k, v in needed.items() if k != slot and offered.get(k, 0.0) < v}
    if short:
        log.warning(
            "a trial needs %s but the cluster offers %s now; trials wait until the autoscaler adds nodes",
            short,
            {k: offered.get(k, 0.0) for k in short},
        )


def check_job_resources(gpus_per_job: float, autoscaled: bool) -> None:
    """Refuse a Ray without what one classifier job holds (1 CPU, ``gpus_per_job`` GPUs) when no autoscaler
    can add it (the local Ray this process started); on a cluster, warn: nodes may still come."""
    offered = ray.cluster_resources()
    needed = {"CPU": 1.0, **({"GPU": float(gpus_per_job)} if gpus_per_job else {})}
    short = {k: v for k, v in needed.items() if offered.get(k, 0.0) < v}
    if not short:
        return
    have = {k: offered.get(k, 0.0) for k in short}
    if not autoscaled:
        raise ConfigError(
            f"each classifier job needs {short} but the local Ray offers {have}; set study.gpus_per_classifier=0 "
            "or submit to a cluster with GPUs (--address)"
        )
    log.warning(
        "a classifier job needs %s but the cluster offers %s now; jobs wait for the autoscaler", short, have
    )


def stop_ray() -> None:
    """Disconnect (and stop the local Ray this process started)."""
    if ray.is_initialized():
        ray.shutdown()


def trial_resources(config: DTGANConfig) -> dict[str, float]:
    """One placement bundle per trial. In-process training: the CPU/GPU it trains on (no driver slot: the head
    that offers the slots has no CPU or GPU, so one bundle asking for both fits no node). Multi-worker: the
    driver slot only; its TorchTrainer workers take the ``distributed`` resources."""
    study = config.study
    if not trains_in_process(config):
        return {study.driver_resource: 1.0}
    resources = {"CPU": config.distributed.cpus_per_worker}
    if study.gpus_per_trial:
        resources["GPU"] = study.gpus_per_trial
    return resources


def check_trial_device(config: DTGANConfig) -> None:
    """A trial that Ray gave a GPU trains on it or fails with one line; it never trains on the CPU silently
    (``train.device=auto`` would fall back). ``train.device=cpu`` is the user's explicit choice and passes."""
    gpu_ids = ray.get_gpu_ids()
    if not gpu_ids or config.train.device == "cpu" or torch.cuda.is_available():
        return
    raise ConfigError(
        f"this trial was given GPU(s) {gpu_ids} on node {ray.util.get_node_ip_address()} but CUDA is not usable "
        f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); fix the node's NVIDIA driver or image, "
        "or set train.device=cpu to train on the CPU on purpose"
    )


def downstream_map_fn(gpus_per_job: float) -> Callable:
    """``map_fn`` for ``dtgan.downstream.run_study``: each classifier job a Ray task (one GPU each when set)."""

    def map_fn(fn, specs):
        remote = (
            ray.remote(num_gpus=gpus_per_job, num_cpus=1)(fn) if gpus_per_job else ray.remote(num_cpus=1)(fn)
        )
        return ray.get([remote.remote(spec) for spec in specs])

    return map_fn


class TuneHooks:
    """``dtgan.search.trial.TrialHooks`` inside a Tune function trainable."""

    def __init__(self, study: StudyConfig, runs_uri: str) -> None:
        self.study = study
        self.runs_uri = (
            runs_uri  # <storage>/<study run>/runs: multi-worker runs keep Ray Train's state beside it
        )
        context = tune.get_context()
        self.trial_id = context.get_trial_id()
        self.trial_name = context.get_trial_name()

    def report(self, metrics: dict[str, Any]) -> None:
        # No Tune checkpoint: the trial's checkpoints are in its run folder in the study storage, where a
        # restarted trial finds them (search/trial.py); a Tune copy would upload each one a second time.
        tune.report(metrics)

    def train(self, config: DTGANConfig, reporter: Reporter, run_dir: Path, resume: bool) -> Trained:
        if trains_in_process(config):
            check_trial_device(config)
        # Multi-worker: a TorchTrainer from this function trainable (Train V2's way); its stable name lets a
        # restarted trial continue the stored run. Metrics reach MLflow from the stored history after the fit
        # (the Train controller runs elsewhere); multi-worker trials report no intermediate FID.
        return fit(
            config,
            reporter,
            run_dir,
            resume,
            workers=WorkerGroupRun(
                run_name=f"train-{run_dir.name}",
                storage_path=self.runs_uri.rsplit("/", 1)[0] + "/train",
                resume="auto",
                progress=False,
            ),
        )

    def downstream_map_fn(self) -> MapFn:
        if self.study.gpus_per_classifier:
            return downstream_map_fn(self.study.gpus_per_classifier)
        return map  # in the trial process: no cluster resources reserved for the jobs


def trial_dirname(trial) -> str:
    """Short trial folders (Tune's default spells out the whole parameter dict)."""
    return f"trial_{trial.trial_id}"


def tune_distribution(dim: Dimension):
    """A YAML dimension as a Tune sampling domain (OptunaSearch converts it to an Optuna distribution)."""
    if dim.type == "uniform":
        return tune.uniform(dim.low, dim.high)
    if dim.type == "loguniform":
        return tune.loguniform(dim.low, dim.high)
    if dim.type == "int":
        return tune.randint(int(dim.low), int(dim.high) + 1)  # Tune's upper bound is exclusive
    return tune.choice(list(dim.values))


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` for the block, then exactly as before."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _scheduler(study: StudyConfig, total_steps: int, early_stopping: bool):
    if not early_stopping or study.scheduler == "fifo":
        return FIFOScheduler()

    every = study.intermediate_fid_every_steps or total_steps
    return ASHAScheduler(
        time_attr=STEP_KEY,
        metric=signal_key(study),
        mode="min",
        max_t=total_steps,
        grace_period=min(total_steps, study.asha_grace_period_reports * every),
        reduction_factor=study.asha_reduction_factor,
    )


def _searcher(study: StudyConfig, space: list[Dimension], earlier_points: list[dict[str, Any]]):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    metrics = [o.metric for o in study.objectives]
    modes = [o.mode for o in study.objectives]
    one = len(metrics) == 1
    searcher = OptunaSearch(
        metric=metrics[0] if one else metrics,
        mode=modes[0] if one else modes,
        seed=study.search_seed,
        # Optuna's enqueued trials: flat names as the searcher flattens the param space ("search/<key>").
        points_to_evaluate=[{f"search/{k}": v for k, v in p.items()} for p in earlier_points] or None,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=study.max_concurrent_trials)


def run_tune(
    trainable: Callable[[dict], None],
    config: DTGANConfig,
    run_name: str,
    storage_path: str,
    *,
    trials: list[TrialSpec] | None = None,
    space: list[Dimension] | None = None,
    earlier_points: list[dict[str, Any]] | None = None,
    early_stopping: bool = False,
) -> list[TrialOutcome]:
    """Run the study's trials; every trial's outcome.

    ``trials`` fixes the trials (the ladder: one per spec, ``params["trial"]`` of the trainable); ``space``
    makes it a search (Optuna TPE seeded by ``study.search_seed``, ``study.num_samples`` trials), whose searcher first
    proposes ``earlier_points`` (a resumed search: the points its earlier launch sampled). ``early_stopping``
    turns on ``study.scheduler`` (ASHA on the intermediate FID); otherwise every trial runs to the end.

    A resumed study starts a new Tune run in the same folder and never restores Tune's saved state: Ray would
    unpickle it, and a file planted in a shared bucket would run its code here. What a resume needs is in
    dtgan's own records instead: finished trials in MLflow (reported again, not rerun), checkpoints in the run
    folders (loaded tensors-only), sampled points as JSON (``search_points.earlier_search_points``).
    """
    study, total_steps = config.study, config.train.total_steps
    fn = tune.with_resources(trainable, trial_resources(config))
    searching = space is not None
    tune_config = tune.TuneConfig(
        scheduler=_scheduler(study, total_steps, early_stopping),
        search_alg=_searcher(study, space, earlier_points or []) if searching else None,
        num_samples=study.num_samples if searching else 1,
        max_concurrent_trials=study.max_concurrent_trials,
        reuse_actors=False,
        trial_dirname_creator=trial_dirname,
    )
    param_space: dict[str, Any] = {"trial": tune.grid_search(trials)} if trials else {}
    if searching:
        param_space["search"] = {dim.key: tune_distribution(dim) for dim in space}
    run_config = tune.RunConfig(
        name=run_name,
        storage_path=storage_path,
        # A trial whose node died (a preempted spot instance) or that raised is started again, on any node,
        # from its last stored checkpoint; its MLflow run is found again by its trial key.
        failure_config=tune.FailureConfig(max_failures=study.max_trial_failures),
        verbose=1,
    )
    tuner = tune.Tuner(fn, param_space=param_space, tune_config=tune_config, run_config=run_config)
    # ASHA-stopped trials end without the objective in their last result: Optuna records them PRUNED,
    # which requires results that carry only some of the searcher's metrics. Ctrl-C is a KeyboardInterrupt in
    # the driver (the study ends KILLED, "continue with --resume"), not Tune's quiet stop that returns unfinished
    # trials (ended FAILED) and advises a Tuner.restore the user cannot run. Both for the fit only.
    with _environment(TUNE_DISABLE_STRICT_METRIC_CHECKING="1", TUNE_DISABLE_SIGINT_HANDLER="1"):
        results = tuner.fit()
    outcomes = []
    for result in results:
        trial_config = result.config or {}
        trial_id = str(
            (result.metrics or {}).get("trial_id") or Path(result.path).name.removeprefix("trial_")
        )
        spec = trial_config.get(
            "trial"
        )  # a trial that failed before its first result names no key: its plan does
        outcomes.append(
            TrialOutcome.from_result(
                result.metrics or {},
                trial_id=trial_id,  # see trial_dirname
                planned_key=spec.trial_key if isinstance(spec, TrialSpec) else f"trial-{trial_id}",
                params=trial_config.get("search"),
                error=None if result.error is None else error_line(result.error, last=True),
            )
        )
    return outcomes


def ladder_trainable(params: dict[str, Any], base_config: dict[str, Any], ctx: TrialContext) -> None:
    """One ladder variant x seed (``params["trial"]``, one of ``ladder_trials``)."""
    spec: TrialSpec = params["trial"]
    config = apply_overrides(DTGANConfig.model_validate(base_config), spec.overrides, run_name=spec.trial_key)
    run_trial(
        config,
        spec.trial_key,
        spec.variant,
        ctx,
        TuneHooks(config.study, ctx.runs_dir),
        run_name=spec.run_name or None,
        description=spec.description or None,
    )


def search_trainable(params: dict[str, Any], base_config: dict[str, Any], ctx: TrialContext) -> None:
    """One sampled point of the search space (``params["search"]``: dotted key -> value)."""

    base = DTGANConfig.model_validate(base_config)
    hooks = TuneHooks(base.study, ctx.runs_dir)
    point = params["search"]
    trial_key = ctx.earlier_trial_key(point) or f"trial-{hooks.trial_id}"  # a resumed trial keeps its key
    record_search_point(ctx.runs_dir, trial_key, point)
    config = apply_overrides(base, nest(point), run_name=trial_key)
    run_trial(
        config,
        trial_key,
        trial_key,
        ctx,
        hooks,
        description=search_description(point, config.model.ablation),
    )


def bind(trainable: Callable, base_config: DTGANConfig, ctx: TrialContext) -> Callable:
    """The trainable with the base config and the trial context put in Ray's object store once."""
    return tune.with_parameters(trainable, base_config=base_config.model_dump(mode="json"), ctx=ctx)


def optuna_distribution(dim: Dimension):
    """A YAML dimension as an Optuna distribution (for rebuilding a finished search as an Optuna study)."""
    import optuna

    if dim.type in ("uniform", "loguniform"):
        return optuna.distributions.FloatDistribution(dim.low, dim.high, log=dim.type == "loguniform")
    if dim.type == "int":
        return optuna.distributions.IntDistribution(int(dim.low), int(dim.high))
    return optuna.distributions.CategoricalDistribution(list(dim.values))


def param_importances(
    trials: list[tuple[dict[str, Any], float]], space: list[Dimension], seed: int = 0
) -> dict[str, float]:
    """Optuna's fANOVA importance of each searched key for the objective (``trials``: the completed trials'
    dotted-key params and objective values); sums to 1, most important first. Needs >= 2 trials."""
    import optuna

    if len(trials) < 2:
        raise ValueError(f"parameter importances need >= 2 completed trials, got {len(trials)}")
    distributions = {dim.key: optuna_distribution(dim) for dim in space}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=seed))
    for params, value in trials:
        known = {k: v for k, v in params.items() if k in distributions}
        study.add_trial(
            optuna.trial.create_trial(
                params=known, distributions={k: distributions[k] for k in known}, value=float(value)
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
