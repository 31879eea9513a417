"""``dtgan train``: train one configuration in this process, with a progress bar; ``--resume`` continues a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtgan.cli.common import add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train DT-GAN (or a ladder step) in one process")
    add_config_arguments(parser)
    parser.add_argument(
        "--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
        help="continue the run from its latest checkpoint (or from the given .pt file)",
    )
    parser.add_argument("--run-dir", type=Path, default=None, help="run folder; default: train.out_dir/train.run_name")
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from dtgan.training.loop import train

    config = config_from_args(args)
    result = train(config, run_dir=args.run_dir, resume=args.resume)
    metrics = result.metrics
    print(
        f"trained {result.step} steps into {result.run_dir} "
        f"({metrics.get('train/images_per_s', float('nan')):.1f} images/s, "
        f"{metrics.get('train/step_ms', float('nan')):.0f} ms/step); checkpoint: {result.checkpoint_path}"
    )
    return 0
