"""Running a command-line entry point: logging, one-line user errors (exit 2), Ctrl-C (exit 130)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from dtgan.errors import DTGANError


def run_entry_point(
    body: Callable[[argparse.Namespace], int | None],
    args: argparse.Namespace,
    prefix: str,
    interrupted: str = "interrupted",
) -> int:
    """Set up logging from ``args.verbose`` and run ``body(args)``; a DTGANError prints one line, exit 2."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(body(args) or 0)
    except DTGANError as exc:
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}{interrupted}", file=sys.stderr)
        return 130
