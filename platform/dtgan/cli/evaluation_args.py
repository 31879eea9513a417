"""Arguments shared by ``dtgan evaluate`` and ``dtgan sample``: the checkpoint, the data and the evaluation
section (from the run's own config, or from a preset, with overrides)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtgan.cli.common import add_config_arguments
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.loader import config_from_dict, deep_merge, load_config, parse_override
from dtgan.config.model import ModelConfig


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT_OR_RUN", help="a checkpoint .pt file or a run folder (its latest)"
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="Parquet data set; default: the data the run was trained on",
    )


def evaluation_config_from_args(args: argparse.Namespace) -> tuple[EvaluationConfig, ModelConfig | None]:
    """The evaluation section and, with ``-c``, the preset's model section that the checkpoint must match.

    Without ``-c`` the run's own saved config is the base, so ``-o evaluation.x=y`` changes only that.
    """
    if args.config is not None:
        config = load_config(args.config, args.override)
        return config.evaluation, config.model
    from dtgan.training.checkpoint import read_checkpoint

    saved = read_checkpoint(Path(args.checkpoint))["config"]
    for text in args.override:
        saved = deep_merge(saved, parse_override(text))
    return config_from_dict(saved).evaluation, None
