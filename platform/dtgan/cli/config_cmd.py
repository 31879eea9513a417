"""``dtgan config show``: print the resolved configuration."""

from __future__ import annotations

import argparse

from dtgan.cli.common import add_config_arguments, config_from_args
from dtgan.config import to_yaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="inspect configurations")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="{show}")
    show = sub.add_parser("show", help="print the resolved YAML of a preset with overrides")
    add_config_arguments(show)
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    print(to_yaml(config_from_args(args)), end="")
    return 0
