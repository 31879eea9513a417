"""``dtgan train``: train one configuration through ``training.launch.fit``: in this process, or on Ray Train
workers with ``--workers N`` (N >= 2; 0 or 1 trains in this process, as in a study trial)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dtgan import keys
from dtgan.cli.common import add_config_arguments, config_from_args
from dtgan.utils.destination import check_destination
from dtgan.utils.lock import writer_lock


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train DT-GAN (or a ladder step) in one process or on Ray workers"
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue the run from its latest checkpoint (or from the given .pt file; single process only)",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="run folder; default: train.out_dir/train.run_name"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="train on N Ray Train workers (sets distributed.workers; 0 or 1: this process); default: one process",
    )
    parser.add_argument(
        "--gpu", action="store_true", default=None, help="one GPU per worker, nccl (distributed.use_gpu)"
    )
    parser.add_argument(
        "--storage",
        default=None,
        metavar="PATH",
        help="folder or URI (s3://...) for the run's checkpoints (distributed.storage_path)",
    )
    parser.set_defaults(func=_train)


def _with_flags(args: argparse.Namespace) -> list[str]:
    """The -o overrides plus those of --workers/--gpu/--storage (validated by the schema like any other)."""
    flags = {
        "distributed.workers": args.workers,
        "distributed.use_gpu": args.gpu,
        "distributed.storage_path": args.storage,
    }
    return [*args.override, *(f"{key}={value}" for key, value in flags.items() if value is not None)]


def _train(args: argparse.Namespace) -> int:
    args.override = _with_flags(args)
    config = config_from_args(args)
    run_dir = check_destination(_locked_run_dir(args, config), "run folder")  # before the data is read
    from dtgan.training.launch import fit  # loads torch
    from dtgan.training.ray_train import DistributedTrainingFailed

    with writer_lock(run_dir, "run folder"):
        try:
            result = fit(config, run_dir=args.run_dir, resume=args.resume)
        except DistributedTrainingFailed as exc:
            print(f"dtgan: error: {exc}", file=sys.stderr)
            return 1
    _print_result(
        result.step, result.run_dir, result.metrics, result.checkpoint_uri or result.checkpoint_path
    )
    return 0


def _locked_run_dir(args: argparse.Namespace, config) -> Path:
    """The local folder the run writes: its run folder (on Ray Train workers: ``<storage>/<run_name>`` when the
    storage is a local folder, else the node-local ``train.out_dir/<run_name>``, as fit_distributed picks)."""
    from dtgan.training.launch import trains_in_process  # loads torch
    from dtgan.training.run_dir import default_run_name, resolve_run_dir

    if args.run_dir is not None or trains_in_process(config):
        return resolve_run_dir(config, args.run_dir)
    name = config.train.run_name or default_run_name(config)
    storage = config.distributed.storage_path or config.train.out_dir
    return Path(storage if "://" not in storage else config.train.out_dir) / name


def _print_result(step, run_dir, metrics, checkpoint) -> None:
    if keys.TRAIN_IMAGES_PER_S not in metrics:  # nothing trained: a resume of a finished run
        print(
            f"{run_dir} is already at step {step} (train.total_steps); nothing to train; checkpoint: {checkpoint}"
        )
        return
    print(
        f"trained {step} steps into {run_dir} "
        f"({metrics.get(keys.TRAIN_IMAGES_PER_S, float('nan')):.1f} images/s, "
        f"{metrics.get(keys.TRAIN_STEP_MS, float('nan')):.0f} ms/step); checkpoint: {checkpoint}"
    )
