"""Arguments shared by ``dtgan evaluate`` and ``dtgan sample``: the checkpoint, the data and the evaluation
section (from the run's own config, or from a preset, with overrides)."""

from __future__ import annotations

import argparse

from dtgan.cli.common import add_config_arguments, run_config_from_args
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.model import ModelConfig

# What a preset may change on an existing run's evaluation or export.
EVALUATION_SECTIONS = ("evaluation",)


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
    """The evaluation section: the run's own saved one, or with ``-c`` the preset's (the preset changes only
    what evaluation may change: a run trained as step (a) is evaluated as step (a) whatever the preset's model
    says), then the ``-o`` overrides. The second value (a model section to match) is None: the run's own."""
    return run_config_from_args(args, args.checkpoint, EVALUATION_SECTIONS).evaluation, None
