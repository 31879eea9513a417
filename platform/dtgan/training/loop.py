"""The training loop: one short function over TrainState, the step functions, checkpoints, samples, a Reporter."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.config.train import TrainConfig
from dtgan.errors import CheckpointError, TrainingDiverged
from dtgan.training.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    restore_train_state,
    resume_changes,
    save_checkpoint,
)
from dtgan.training.data import TrainingData, build_training_data
from dtgan.training.environment import Environment, resolve_device
from dtgan.training.reporter import ConsoleReporter, NullReporter, Reporter
from dtgan.training.rng import capture_rng_state
from dtgan.training.run_dir import (
    METRICS_FILE,
    first_missing_folder,
    prepare_run_dir,
    record_config_changes,
    remove_if_nothing_kept,
    resolve_run_dir,
    rewind_metrics,
)
from dtgan.training.samples import SampleInputs, sample_inputs_from_data, write_sample_grids
from dtgan.training.schedules import ema_beta, lambda_ds
from dtgan.training.state import TrainState, build_train_state
from dtgan.training.steps import train_step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    checkpoint_path: Path | None  # the last checkpoint written (rank 0) or resumed from
    metrics: dict[str, float] = field(default_factory=dict)  # the last report


@dataclass
class _TermGroup:
    """The running sums of one set of term names, and per term the first step it was non-finite (-1: never)."""

    sums: torch.Tensor
    first_bad_step: torch.Tensor
    first_bad_value: torch.Tensor
    count: int = 0


class TermMeter:
    """Averages the detached loss terms over a logging window and watches them for NaN/inf, on their device.

    Nothing is read back per step (a GPU can run ahead of the CPU): ``raise_if_diverged`` and ``flush`` read
    the window at log and checkpoint steps. Steps whose terms differ (lazy R1 logs ``d/r1`` on its steps only)
    keep separate groups; a term's mean is over the steps that computed it.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.groups: dict[tuple[str, ...], _TermGroup] = {}
        self.steps = 0
        self.seconds = 0.0

    def add(self, terms: dict[str, torch.Tensor], step: int, seconds: float) -> None:
        """Add the terms of ``step`` (the count of completed iterations, as the error message names it)."""
        values = torch.stack([v.detach().float() for v in terms.values()])
        group = self.groups.get(tuple(terms))
        if group is None:
            group = self.groups[tuple(terms)] = _TermGroup(
                sums=torch.zeros_like(values),
                first_bad_step=torch.full(values.shape, -1, dtype=torch.long, device=values.device),
                first_bad_value=torch.zeros_like(values),
            )
        group.sums += values
        group.count += 1
        newly_bad = ~torch.isfinite(values) & (group.first_bad_step < 0)
        group.first_bad_step = torch.where(newly_bad, step, group.first_bad_step)
        group.first_bad_value = torch.where(newly_bad, values, group.first_bad_value)
        self.steps += 1
        self.seconds += seconds

    def raise_if_diverged(self, last_checkpoint: Path | None) -> None:
        """One host read: TrainingDiverged naming the first term to go non-finite and its step, if any did.

        The wait for the device counts as training time of the window."""
        started = time.perf_counter()
        found = []
        for names, group in self.groups.items():
            steps, values = group.first_bad_step.tolist(), group.first_bad_value.tolist()
            found += [(s, i, name, v) for i, (name, s, v) in enumerate(zip(names, steps, values)) if s >= 0]
        self.seconds += time.perf_counter() - started
        if found:
            step, _, name, value = min(
                found
            )  # the earliest step; within it, the first term (D, D, G, G order)
            raise TrainingDiverged(
                f"loss '{name}' became {value} at step {step}; {_kept(last_checkpoint)} "
                "(lower optim.lr or a loss weight)"
            )

    def flush(self, images_per_step: int) -> dict[str, float]:
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for names, group in self.groups.items():
            for name, value in zip(names, group.sums.tolist()):
                sums[name] = sums.get(name, 0.0) + value
                counts[name] = counts.get(name, 0) + group.count
        metrics = {keys.train_key(name): sums[name] / counts[name] for name in sums}
        if self.steps:
            metrics[keys.TRAIN_IMAGES_PER_S] = images_per_step * self.steps / self.seconds
            metrics[keys.TRAIN_STEP_MS] = 1000.0 * self.seconds / self.steps
        self.reset()
        return metrics


def _kept(last_checkpoint: Path | None) -> str:
    return (
        f"the last good checkpoint is {last_checkpoint}"
        if last_checkpoint
        else "no checkpoint was written yet"
    )


def _resume_path(run_dir: Path, resume: bool | str | Path) -> Path | None:
    if resume is False or resume is None:
        return None
    if resume is True:
        path = latest_checkpoint(run_dir)
        if path is None:
            raise CheckpointError(
                f"{run_dir}: nothing to resume (no checkpoints/step_*.pt); run without --resume"
            )
        return path
    return Path(resume)


# train.log_every_steps "auto": a log every few seconds on each device, never a host read per step. One CPU
# iteration of the CPU presets takes ~0.3-1 s (benchmarks/RESULTS.md); a GPU's, at the paper's batch 4, an
# estimated ~0.1 s. The cadence is a function of the device type alone, so every rank of a worker group reports
# at the same steps (a report is a barrier there).
AUTO_LOG_EVERY_STEPS = {"cpu": 10}
AUTO_LOG_EVERY_STEPS_ACCELERATOR = 100


def log_interval(train_cfg: TrainConfig, device: torch.device) -> int:
    """Steps between logs on ``device``: ``train.log_every_steps``, or its per-device default for "auto"."""
    if train_cfg.log_every_steps != "auto":
        return train_cfg.log_every_steps
    return AUTO_LOG_EVERY_STEPS.get(device.type, AUTO_LOG_EVERY_STEPS_ACCELERATOR)


def _due(step: int, every: int, total: int) -> bool:
    return step % every == 0 or step == total


@dataclass
class _Run:
    """What the loop works on, set up by :func:`_start`."""

    run_dir: Path
    data: TrainingData
    state: TrainState
    samples: SampleInputs | None  # rank 0 only
    last_checkpoint: Path | None


def _start(
    config: DTGANConfig, run_dir: str | Path | None, resume: bool | str | Path, env: Environment
) -> _Run:
    """Run folder (rank 0), data, seeded state, and the checkpoint to resume from."""
    run_dir = resolve_run_dir(config, run_dir)
    resume_from = _resume_path(run_dir, resume)
    payload = read_checkpoint(resume_from) if resume_from is not None else None
    changes = (
        resume_changes(payload, config, resume_from) if payload is not None else {}
    )  # before config.yaml
    data = build_training_data(config, env)  # bad data fails before the run folder exists
    if env.is_main:
        prepare_run_dir(run_dir, config, resuming=resume_from is not None)
        if changes:
            record_config_changes(run_dir, int(payload["step"]), changes)
        if payload is not None:
            rewind_metrics(run_dir, int(payload["step"]))
    state = build_train_state(config, len(data.vocab.defects), len(data.vocab.products), env)
    if payload is not None:
        data.load_state_dict(
            restore_train_state(payload, state, config, data.vocab, resume_from, rank=env.rank)
        )
        log.info("resumed %s at step %d", resume_from, state.step)
    samples = None
    if env.is_main:
        samples = sample_inputs_from_data(
            data.dataset, config.data.path, config.model.img_size, config.model.latent_dim, config.train.seed
        )
    return _Run(run_dir, data, state, samples, resume_from)


def _rank_rng_states(state: TrainState, env: Environment) -> list[dict]:
    """Every rank's RNG states (a collective: all ranks call it when a checkpoint is due)."""
    return env.gather_objects(capture_rng_state(state.z_generator, env.device))


def _write_outputs(run: _Run, config: DTGANConfig, env: Environment) -> Path | None:
    """Sample grids and checkpoints when due (rank 0); returns the checkpoint written, if any."""
    tcfg, step = config.train, run.state.step
    checkpoint_due = _due(step, tcfg.checkpoint_every_steps, tcfg.total_steps)
    if not env.is_main:
        if checkpoint_due:
            _rank_rng_states(run.state, env)  # every rank takes part in the gather
        return None
    if _due(step, tcfg.sample_every_steps, tcfg.total_steps):  # samples fork the RNGs: states unchanged
        write_sample_grids(run.run_dir, step, run.state.nets_ema, run.samples, env.device, tcfg.seed)
    if not checkpoint_due:
        return None
    rng_states = _rank_rng_states(run.state, env)
    try:
        saved = save_checkpoint(
            checkpoint_path(run.run_dir, step),
            run.state,
            config,
            run.data.vocab,
            run.data.state_dict(),
            rng_states,
        )
    except TrainingDiverged as exc:  # finite losses, non-finite weights: never written, never pruned over
        raise TrainingDiverged(
            f"{exc}; {_kept(run.last_checkpoint)} (lower optim.lr or a loss weight)"
        ) from None
    prune_checkpoints(run.run_dir, tcfg.keep_checkpoints)
    run.last_checkpoint = saved
    return saved


def train(
    config: DTGANConfig,
    reporter: Reporter | None = None,
    run_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    *,
    env: Environment | None = None,
) -> TrainResult:
    """Train ``config`` to ``train.total_steps``; ``resume`` = True (latest checkpoint of the run) or a file.

    ``env`` places the process (rank, device, model/gradient hooks); only rank 0 writes files. Every rank
    calls ``reporter.report`` at the same steps (a barrier for Ray); only rank 0 passes a checkpoint path.
    """
    env = env or Environment(device=resolve_device(config.train.device))
    target = resolve_run_dir(config, run_dir)
    created = first_missing_folder(target)  # a run that fails before writing anything leaves no folder
    try:
        return _train(config, reporter, target, resume, env)
    except BaseException:
        if env.is_main and created is not None:
            remove_if_nothing_kept(target, created)
        raise


def _train(
    config: DTGANConfig, reporter: Reporter | None, run_dir: Path, resume: bool | str | Path, env: Environment
) -> TrainResult:
    tcfg = config.train
    run = _start(config, run_dir, resume, env)
    state = run.state
    if reporter is None:
        reporter = (
            ConsoleReporter(run.run_dir / METRICS_FILE, tcfg.total_steps, state.step)
            if env.is_main
            else NullReporter()
        )
    meter, metrics = TermMeter(), {}
    log_every = log_interval(tcfg, env.device)
    if tcfg.checkpoint_at_start and state.step == 0:
        rng_states = _rank_rng_states(state, env)
        if env.is_main:
            run.last_checkpoint = save_checkpoint(
                checkpoint_path(run.run_dir, 0),
                state,
                config,
                run.data.vocab,
                run.data.state_dict(),
                rng_states,
            )
    try:
        while state.step < tcfg.total_steps:
            started = time.perf_counter()
            batch = run.data.next_batch(state.z_generator, config.model.latent_dim, env.device)
            terms = train_step(state, batch, config, env.sync_gradients)
            meter.add(terms, state.step, time.perf_counter() - started)
            step = state.step
            reported = _due(step, tcfg.checkpoint_every_steps, tcfg.total_steps) or _due(
                step, log_every, tcfg.total_steps
            )
            if reported:  # the only host reads of the loss terms: before anything is written of this step
                meter.raise_if_diverged(run.last_checkpoint)
                metrics = meter.flush(tcfg.batch_size) | {
                    keys.TRAIN_LAMBDA_DS: lambda_ds(step - 1, config.loss),
                    keys.TRAIN_EMA_BETA: ema_beta(step - 1, tcfg),
                }
                if _due(step, tcfg.checkpoint_every_steps, tcfg.total_steps):
                    reporter.before_checkpoint(step, metrics)  # durable before the checkpoint can be resumed
            saved = _write_outputs(run, config, env)
            if reported:
                reporter.report(step, metrics, str(saved) if saved is not None else None)
    finally:
        reporter.close()
    return TrainResult(
        run_dir=run.run_dir, step=state.step, checkpoint_path=run.last_checkpoint, metrics=metrics
    )
