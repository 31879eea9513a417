"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from dtgan.config import DTGANConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``-c PRESET`` and repeatable ``-o section.key=value``."""
    parser.add_argument(
        "-c",
        "--config",
        metavar="PRESET",
        default=None,
        help="preset name (experiments/presets/NAME.yaml) or YAML path; default: the embedded defaults",
    )
    parser.add_argument(
        "-o",
        "--override",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="dotted override validated against the schema, e.g. -o loss.lambda_cyc=2 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> DTGANConfig:
    return load_config(args.config, args.override)
