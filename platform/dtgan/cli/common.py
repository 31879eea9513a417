"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from dtgan.config import DTGANConfig, load_config
from dtgan.config.loader import config_from_dict, deep_merge, parse_override
from dtgan.errors import ConfigError


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


def run_config_from_args(args: argparse.Namespace, checkpoint: str, sections: tuple[str, ...]) -> DTGANConfig:
    """The config of a command on an existing run: the run's saved config (the checkpoint's), with ``-c PRESET``
    replacing only ``sections`` (what the command may change, e.g. ``evaluation``; the model, data and
    training stay the run's), then the ``-o`` overrides."""
    from dtgan.training.checkpoint import read_checkpoint  # loads torch

    for text in args.override:
        section = text.partition("=")[0].strip().split(".")[0]
        if section not in sections:
            raise ConfigError(
                f"-o {text}: on an existing run only {', '.join(f'{s}.*' for s in sections)} may change; "
                f"'{section}' stays as the run was trained (other data: --data)"
            )
    saved = read_checkpoint(checkpoint)["config"]
    if args.config is not None:
        preset = load_config(args.config).model_dump(mode="json")
        saved = deep_merge(saved, {section: preset[section] for section in sections})
    for text in args.override:
        saved = deep_merge(saved, parse_override(text))
    return config_from_dict(saved)
