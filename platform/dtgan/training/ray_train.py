"""Ray Train adapter: the training loop on N workers of a TorchTrainer, checkpoints in a storage path, recovery.

The only module that imports Ray Train. ``fit_distributed`` runs ``dtgan.training.loop.train`` on every
worker with a distributed ``Environment``: gloo (CPU) or nccl (GPU) process group set up by the
TorchTrainer, the device chosen by Ray, and gradients averaged over the workers after every backward by
``environment.all_reduce_gradients``. That is what DDP does (averaged gradients over the process group)
without DDP's hooks, which do not fit this step: the G step calls ``generator.encode/decode/fg_content``
directly (not ``forward``), R1 differentiates D with ``autograd.grad(create_graph=True)``, and each network
is updated by two backward passes per iteration while the others are frozen. The models are therefore
not wrapped by ``ray.train.torch.prepare_model``; the loaders shard themselves (``data.loaders``).

Layout under ``storage_path`` (a local folder or a pyarrow URI such as ``s3://bucket/runs``)::

    <run_name>/checkpoint_<step>/   step_XXXXXXXX.pt + metrics.jsonl + config.yaml (Ray keeps the latest)
    <run_name>/...                  Ray's run state; with a local storage path also the dtgan run folder

Recovery: a failed worker group is restarted (``FailureConfig(max_failures)``) and every worker resumes
from the latest checkpoint with its step, RNG and loader positions; rank 0 rewinds metrics.jsonl to that
checkpoint's copy, so the history has every step exactly once. Divergence (NaN) is not retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

import dtgan
from dtgan import keys
from dtgan.config.distributed import FAIL_AT_STEP_ENV
from dtgan.config.loader import config_from_dict
from dtgan.config.root import DTGANConfig
from dtgan.errors import CheckpointError, ConfigError, TrainingDiverged
from dtgan.storage import Storage
from dtgan.training.checkpoint import CHECKPOINT_DIR, checkpoint_step, checkpoints_in, list_checkpoints
from dtgan.training.environment import Environment, all_reduce_gradients, no_gradient_sync
from dtgan.training.loop import log_interval, train
from dtgan.training.reporter import PROGRESS_TERMS, ConsoleReporter, Reporter
from dtgan.training.run_dir import METRICS_FILE, default_run_name
from dtgan.utils.atomic import atomic_path

# How Ray hands a submitted job its runtime env (ray._private.runtime_env.constants.RAY_JOB_CONFIG_JSON_ENV_VAR).
_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
_AUTH_MODE_ENV = "RAY_AUTH_MODE"  # ray._private.authentication.authentication_token_setup.AUTH_MODE_ENV_VAR

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint_"
DIVERGED_MARKER = "dtgan_diverged.txt"  # written by a worker whose loss became NaN; stops further attempts


class InjectedFailure(RuntimeError):
    """The test-only failure of ``$DTGAN_TEST_FAIL_AT_STEP`` (``injected_failure_step``)."""


class DistributedTrainingFailed(RuntimeError):
    """The workers failed more often than ``distributed.max_failures``; the checkpoints stay in the storage."""


# --------------------------------------------------------------------------------------------- storage


def stored_checkpoints(storage_path: str, run_name: str) -> list[str]:
    """Names of the Ray checkpoint folders of ``run_name`` in the storage, oldest first."""
    return [
        d for d in Storage.at(storage_path).child(run_name).list_dirs() if d.startswith(CHECKPOINT_PREFIX)
    ]


def fetch_checkpoint(checkpoint_uri: str, run_dir: Path) -> Path | None:
    """Copy the ``step_*.pt`` of a stored Ray checkpoint folder into ``run_dir/checkpoints/`` (rank 0 wrote the
    run folder on its own node); the local file, or None when the folder holds none."""
    with tempfile.TemporaryDirectory(prefix="dtgan-ray-ckpt-") as tmp:
        Storage.at(checkpoint_uri).download_to(Path(tmp))
        found = checkpoints_in(Path(tmp))
        if not found:
            return None
        target = run_dir / CHECKPOINT_DIR / found[-1].name
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as part:
            shutil.copyfile(found[-1], part)
    return target


def _read_marker(storage_path: str, run_name: str) -> str | None:
    run = Storage.at(storage_path).child(run_name)
    return run.read_bytes(DIVERGED_MARKER).decode() if run.is_file(DIVERGED_MARKER) else None


def _write_marker(storage_path: str, run_name: str, message: str) -> None:
    Storage.at(storage_path).child(run_name).write_bytes(DIVERGED_MARKER, message.encode())


def _clear_marker(storage_path: str, run_name: str) -> None:
    Storage.at(storage_path).child(run_name).delete_file(DIVERGED_MARKER)


# --------------------------------------------------------------------------------------------- workers


def injected_failure_step() -> int | None:
    """TEST ONLY: ``$DTGAN_TEST_FAIL_AT_STEP`` (a reported step): the last rank raises there once, in the attempt
    that did not start from a checkpoint, to exercise recovery. Not a config key: users never set it."""
    raw = os.environ.get(FAIL_AT_STEP_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{FAIL_AT_STEP_ENV}={raw!r} must be a step >= 1 (a test hook); unset it")
    return int(raw)


def _worker_log_interval(config: DTGANConfig) -> int:
    """The workers' log cadence (``train.log_every_steps``, "auto" resolved for the device they train on: a GPU
    each with ``distributed.use_gpu``, else the CPU)."""
    return log_interval(config.train, torch.device("cuda" if config.distributed.use_gpu else "cpu"))


def _is_report_step(step: int, config: DTGANConfig) -> bool:
    t = config.train
    every = _worker_log_interval(config)
    return step % every == 0 or step % t.checkpoint_every_steps == 0 or step == t.total_steps


class RayTrainReporter(Reporter):
    """Every rank: averages the metrics over the ranks and calls ``ray.train.report`` (a barrier).

    Rank 0 also appends them to the run's metrics.jsonl and hands its checkpoint to Ray as a folder with
    the .pt file, metrics.jsonl and config.yaml. Loss terms are means over the global batch; images/s is
    the aggregate rate and ``train/worker_images_per_s`` the rate of one worker.
    """

    def __init__(
        self,
        rank: int,
        world_size: int,
        device: torch.device,
        run_dir: Path,
        total_steps: int,
        start_step: int,
        fail_at_step: int | None = None,
    ) -> None:
        self.rank, self.world_size, self.device, self.run_dir = rank, world_size, device, run_dir
        self.fail_at_step = fail_at_step
        self._history = (
            ConsoleReporter(run_dir / METRICS_FILE, total_steps, start_step, show_progress=False)
            if rank == 0
            else None
        )

    def _average(self, metrics: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1:
            return dict(metrics)
        import torch.distributed as dist

        names = sorted(metrics)  # the same keys on every rank (same config)
        values = torch.tensor([metrics[k] for k in names], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(names, (values / self.world_size).tolist()))

    def _checkpoint_folder(self, checkpoint_path: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="dtgan-ckpt-"))
        for source in (Path(checkpoint_path), self.run_dir / METRICS_FILE, self.run_dir / "config.yaml"):
            if source.exists():
                shutil.copy2(source, folder / source.name)
        return folder

    def report(self, step: int, metrics: dict[str, float], checkpoint_path: str | None) -> None:
        import ray.train

        if self.fail_at_step == step and self.rank == self.world_size - 1:
            raise InjectedFailure(
                f"{FAIL_AT_STEP_ENV}={step}: injected failure of rank {self.rank} (test only)"
            )
        metrics = self._average(metrics)
        if keys.TRAIN_IMAGES_PER_S in metrics:
            metrics[keys.TRAIN_WORKER_IMAGES_PER_S] = metrics[keys.TRAIN_IMAGES_PER_S] / self.world_size
        folder = None
        if self._history is not None:
            self._history.report(step, metrics, checkpoint_path)
            if checkpoint_path is not None:
                folder = self._checkpoint_folder(checkpoint_path)
        try:
            checkpoint = ray.train.Checkpoint.from_directory(str(folder)) if folder else None
            ray.train.report(
                {"step": step, **metrics},
                checkpoint=checkpoint,
                checkpoint_dir_name=f"{CHECKPOINT_PREFIX}{step:08d}" if folder else None,
            )
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        if self._history is not None:
            self._history.close()


def _rewind_run_dir(run_dir: Path, restored: Path | None, step: int) -> None:
    """Rank 0, at the start of an attempt: metrics.jsonl := the checkpoint's copy (or empty), and no local
    checkpoint newer than the resumed step (left by a failed attempt), so no step is reported twice."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / METRICS_FILE) as tmp:
        source = restored / METRICS_FILE if restored is not None else None
        Path(tmp).write_text(source.read_text() if source is not None and source.exists() else "")
    for path in list_checkpoints(run_dir):
        if checkpoint_step(path) > step or restored is None:
            path.unlink(missing_ok=True)


def _train_worker(params: dict[str, Any]) -> dict[str, Any]:
    """The per-worker function: build the distributed Environment, resume from Ray's latest checkpoint."""
    import ray.train
    import ray.train.torch

    config = config_from_dict(params["config"])
    storage_path, run_name, run_dir = params["storage_path"], params["run_name"], Path(params["run_dir"])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    diverged = _read_marker(storage_path, run_name)
    if diverged is not None:  # an earlier attempt diverged: finish without training, the driver raises
        return {"diverged": diverged}
    device = ray.train.torch.get_device()
    if config.distributed.use_gpu and device.type != "cuda":  # never train on the CPU without a word
        raise ConfigError(
            f"worker {rank} was given GPU(s) {ray.get_gpu_ids()} but CUDA is not usable (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
            "fix the node's NVIDIA driver or image, or set distributed.use_gpu=false"
        )
    env = Environment(
        rank=rank,
        world_size=world_size,
        device=device,
        sync_gradients=all_reduce_gradients if world_size > 1 else no_gradient_sync,
    )
    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint is not None else contextlib.nullcontext() as restored:
        restored = Path(restored) if restored is not None else None
        resume: bool | Path = False
        start_step = 0
        if restored is not None:
            found = checkpoints_in(restored)
            if not found:
                raise CheckpointError(f"{restored}: Ray checkpoint without a step_*.pt file")
            resume, start_step = found[-1], checkpoint_step(found[-1])
        if env.is_main:
            _rewind_run_dir(run_dir, restored, start_step)
        # Failure injection (test only) in the first attempt, the one that starts without a checkpoint.
        fail_at_step = params.get("fail_at_step") if restored is None else None
        reporter = RayTrainReporter(
            rank, world_size, env.device, run_dir, config.train.total_steps, start_step, fail_at_step
        )
        try:
            result = train(config, reporter, run_dir, resume, env=env)
        except TrainingDiverged as exc:
            _write_marker(storage_path, run_name, str(exc))
            raise
    return {"step": result.step, "metrics": result.metrics, "run_dir": str(result.run_dir)}


# --------------------------------------------------------------------------------------------- driver


def _progress_callback(total_steps: int, on_report: Callable[[int, dict], None] | None):
    """A ``ray.train.UserCallback`` (runs in the Train controller) logging step, images/s and main losses."""
    import ray.train

    class Progress(ray.train.UserCallback):
        def __init__(self) -> None:
            self.last_step = 0

        def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
            rank0 = metrics[0]
            step = int(rank0.get("step", 0))
            if step <= self.last_step:  # steps repeated after a recovery are not shown twice
                return
            self.last_step = step
            shown = "  ".join(
                f"{short} {rank0[key]:.3g}" for key, short in PROGRESS_TERMS.items() if key in rank0
            )
            log.warning("step %d/%d  %s%s", step, total_steps, shown, "  (checkpoint)" if checkpoint else "")
            if on_report is not None:
                on_report(step, rank0)

    return Progress()


@dataclass(frozen=True)
class DistributedResult:
    """What ``fit_distributed`` returns (on the driver)."""

    run_name: str
    storage_path: str
    run_dir: Path  # rank 0's run folder (node-local when the storage is a URI)
    step: int
    metrics: dict[str, float]  # the last report (averaged over the workers)
    checkpoint_uri: str | None  # the latest Ray checkpoint folder in the storage
    metrics_history: list[dict] = field(default_factory=list)  # metrics.jsonl of the latest checkpoint


def resolve_storage(config: DTGANConfig, storage_path: str | None = None) -> str:
    """``storage_path`` or ``distributed.storage_path`` or ``train.out_dir``; local paths made absolute."""
    path = storage_path or config.distributed.storage_path or config.train.out_dir
    return path if "://" in path else str(Path(path).resolve())


def check_distributed(config: DTGANConfig) -> None:
    """Errors that would otherwise surface inside the workers (and be retried)."""
    d, t = config.distributed, config.train
    workers = max(d.workers, 1)
    if t.batch_size % workers:
        raise ConfigError(
            f"train.batch_size={t.batch_size} is not divisible by distributed.workers={workers}; "
            "choose a multiple of the worker count"
        )
    fail_at_step = injected_failure_step()
    if fail_at_step is not None and not _is_report_step(fail_at_step, config):
        raise ConfigError(
            f"{FAIL_AT_STEP_ENV}={fail_at_step} is not a reported step "
            f"(a multiple of train.log_every_steps={_worker_log_interval(config)})"
        )


def dtgan_package_dir() -> Path:
    """``platform/dtgan`` of the code running now: shipped to every worker as a py_module."""
    return Path(dtgan.__file__).resolve().parent


def runtime_env() -> dict[str, Any]:
    """Ship ``dtgan`` to workers (a job's ``--working-dir`` alone does not make it importable).

    Inside a ``ray job submit`` whose runtime env already ships py_modules, nothing is added: Ray refuses to
    merge a field the job and ``ray.init`` both set.
    """
    job_env = json.loads(os.environ.get(_JOB_CONFIG_ENV, "{}") or "{}").get("runtime_env") or {}
    if "py_modules" in job_env:
        return {}
    env: dict[str, Any] = {"py_modules": [str(dtgan_package_dir())]}
    if "excludes" not in job_env:
        env["excludes"] = ["__pycache__", "*.pyc"]
    return env


def connect_ray(
    *,
    address: str | None = None,
    num_cpus: float | None = None,
    resources: dict[str, float] | None = None,
    temp_dir: str | None = None,
) -> bool:
    """The one Ray connection policy (studies and ``dtgan train`` alike): nothing when this process is connected
    already (returns False: the caller leaves Ray running); else ``address`` or ``$RAY_ADDRESS`` (set by
    ``ray job submit``), else a private local Ray (never one a ``ray start`` left on this machine) with
    ``num_cpus`` (None: Ray counts them) and ``resources``. Workers get ``runtime_env()``; the local
    dashboard stays on: its State API lets Ray Train's placement-group cleaner free the workers' CPUs when a
    controller dies (e.g. a Tune trial stopped early); without it the CPUs leak. Returns True when it
    connected (the caller may stop Ray)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env(), log_to_driver=True)
        return True
    _require_token_auth()
    ray.init(
        address="local",
        num_cpus=num_cpus,
        resources=resources,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        runtime_env=runtime_env(),
        _temp_dir=temp_dir,
        log_to_driver=True,
    )
    return True


def _require_token_auth() -> None:
    """The private local Ray always authenticates with a token: its GCS, raylet and worker gRPC servers listen on
    every interface (Ray 2.60 has no option to bind them to loopback), so without a token anyone on the same
    network could run code through them. Ray turns tokens on for a new local cluster unless ``$RAY_AUTH_MODE``
    says otherwise (it then writes ``~/.ray/auth_token`` if missing), so an opt-out is removed here."""
    mode = os.environ.get(_AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        log.warning(
            "%s=%s ignored: the study's private local Ray always uses token authentication",
            _AUTH_MODE_ENV,
            mode,
        )
        del os.environ[_AUTH_MODE_ENV]


def ensure_ray(workers: int, cpus_per_worker: float) -> None:
    """Connected to Ray for ``workers`` x ``cpus_per_worker`` (``connect_ray``); a local Ray has at least that
    many CPUs, so a laptop runs more workers than cores."""
    needed = int(workers * cpus_per_worker + 0.999)
    connect_ray(num_cpus=max(os.cpu_count() or 1, needed))


def fit_distributed(
    config: DTGANConfig,
    run_name: str | None = None,
    storage_path: str | None = None,
    *,
    resume: bool | Literal["auto"] = "auto",
    run_dir: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    on_report: Callable[[int, dict], None] | None = None,
    progress: bool = True,
) -> DistributedResult:
    """Train ``config`` on ``config.distributed.workers`` Ray Train workers (at least 1).

    Args:
        config: the resolved config; ``train.batch_size`` is global.
        run_name: the stable name of the Ray run and of the run folder (restore depends on it); default
            ``train.run_name`` or the derived default name. Never a timestamp.
        storage_path: local folder or URI; default ``distributed.storage_path`` or ``train.out_dir``.
        resume: ``"auto"`` continues a stored run of that name if there is one (Tune trials), ``True``
            requires one (``dtgan train --resume``), ``False`` refuses to overwrite one.
        run_dir: rank 0's run folder; default ``<storage>/<run_name>`` for local storage, else
            ``train.out_dir/<run_name>`` on rank 0's node.
        callbacks: extra ``ray.train.UserCallback``s, e.g. Tune's ``TuneReportCallback()``.
        on_report: called in the Train controller with (step, rank 0's metrics) after each new report.
        progress: log step, images/s and the main losses as workers report.

    Returns:
        DistributedResult. Raises TrainingDiverged (not retried), ConfigError / CheckpointError, or Ray's
        TrainingFailedError when the failures exceed ``distributed.max_failures``.
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    check_distributed(config)
    d = config.distributed
    workers = max(d.workers, 1)
    run_name = run_name or config.train.run_name or default_run_name(config)
    storage = resolve_storage(config, storage_path)
    stored = stored_checkpoints(storage, run_name)
    if resume is False and stored:
        raise ConfigError(
            f"{storage}/{run_name} already holds checkpoints; pass --resume to continue it "
            "or set train.run_name to start another run"
        )
    if resume is True and not stored:
        raise CheckpointError(
            f"{storage}/{run_name}: nothing to resume (no {CHECKPOINT_PREFIX}* folders); run without --resume"
        )
    local_storage = "://" not in storage
    if run_dir is None:
        run_dir = (
            Path(storage) / run_name if local_storage else Path(config.train.out_dir).resolve() / run_name
        )
    run_dir = Path(run_dir).resolve()
    if local_storage and resume is False and list_checkpoints(run_dir):
        raise ConfigError(f"{run_dir} already holds {CHECKPOINT_DIR}/; pass --resume or set train.run_name")
    _clear_marker(storage, run_name)

    ensure_ray(workers, d.cpus_per_worker)
    resources = {"CPU": d.cpus_per_worker} | ({"GPU": 1} if d.use_gpu else {})
    all_callbacks = list(callbacks)
    if progress or on_report is not None:
        all_callbacks.append(_progress_callback(config.train.total_steps, on_report))
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "config": config.model_dump(mode="json"),
            "storage_path": storage,
            "run_name": run_name,
            "run_dir": str(run_dir),
            "fail_at_step": injected_failure_step(),  # read here: the workers do not see this environment
        },
        torch_config=TorchConfig(backend="nccl" if d.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=workers, use_gpu=d.use_gpu, resources_per_worker=resources
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            callbacks=all_callbacks,
            failure_config=ray.train.FailureConfig(max_failures=d.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=config.train.keep_checkpoints),
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        diverged = _read_marker(storage, run_name) or _diverged_message(exc)
        if diverged:
            raise TrainingDiverged(diverged) from None
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        last = lines[-1] if lines else type(exc).__name__  # the worker's exception line
        raise DistributedTrainingFailed(
            f"{storage}/{run_name}: training failed after {d.max_failures} recoveries ({last}); "
            "`dtgan train --workers N --resume` continues from the latest checkpoint"
        ) from exc
    returned = result.return_value or {}
    if "diverged" in returned:
        raise TrainingDiverged(returned["diverged"])
    history: list[dict] = []
    if result.checkpoint is not None:
        with result.checkpoint.as_directory() as folder:
            metrics_file = Path(folder) / METRICS_FILE
            if metrics_file.exists():
                history = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    return DistributedResult(
        run_name=run_name,
        storage_path=storage,
        run_dir=Path(returned.get("run_dir", run_dir)),
        step=int(returned.get("step", history[-1]["step"] if history else 0)),
        metrics={k: v for k, v in (result.metrics or {}).items() if k.startswith(keys.TRAIN_PREFIX)},
        checkpoint_uri=result.checkpoint.path if result.checkpoint is not None else None,
        metrics_history=history,
    )


def _diverged_message(exc: Exception) -> str | None:
    """The TrainingDiverged message among a WorkerGroupError's worker failures, if any."""
    for failure in getattr(exc, "worker_failures", {}).values():
        cause = failure
        while cause is not None:
            if isinstance(cause, TrainingDiverged):
                return str(cause)
            cause = getattr(cause, "cause", None) or cause.__cause__
    return None
