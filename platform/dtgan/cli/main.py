"""Entry point of the ``dtgan`` command: builds the parser from the subcommand modules."""

from __future__ import annotations

import argparse
import importlib

from dtgan import __version__
from dtgan.utils.entry import run_entry_point

# Each module exposes register(subparsers); the order is the order of --help.
COMMAND_MODULES = (
    "dtgan.cli.config_cmd",
    "dtgan.cli.data_cmd",
    "dtgan.cli.train_cmd",
    "dtgan.cli.evaluate_cmd",
    "dtgan.cli.crop_paste_cmd",
    "dtgan.cli.sample_cmd",
    "dtgan.cli.downstream_cmd",
    "dtgan.cli.report_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtgan",
        description="DT-GAN experiment platform: data, training, evaluation, downstream studies, reports.",
    )
    parser.add_argument("--version", action="version", version=f"dtgan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_entry_point(args.func, args, prefix="dtgan: ")


if __name__ == "__main__":
    raise SystemExit(main())
