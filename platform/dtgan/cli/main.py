"""Entry point of the ``dtgan`` command: builds the parser from the subcommand modules."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dtgan import __version__
from dtgan.errors import DTGANError

# Each module exposes register(subparsers); the order is the order of --help.
COMMAND_MODULES = (
    "dtgan.cli.config_cmd",
    "dtgan.cli.data_cmd",
    "dtgan.cli.train_cmd",
    "dtgan.cli.evaluate_cmd",
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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except DTGANError as exc:
        print(f"dtgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dtgan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
