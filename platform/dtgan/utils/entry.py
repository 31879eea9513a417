"""Running a command-line entry point: logging, one-line user errors (exit 2), Ctrl-C (exit 130)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from dtgan.errors import DTGANError
from dtgan.utils.destination import os_error_line

log = logging.getLogger(__name__)


def run_entry_point(
    body: Callable[[argparse.Namespace], int | None],
    args: argparse.Namespace,
    prefix: str,
    interrupted: str = "interrupted",
) -> int:
    """Set up logging from ``args.verbose`` and run ``body(args)``; a DTGANError prints one line, exit 2, and
    so does an OSError on a named path (read-only, disk full, a file where a folder goes: the environment's
    fault, not the code's), with what to do; the traceback is logged at debug level (``-v``)."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(body(args) or 0)
    except DTGANError as exc:
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        line = os_error_line(exc)
        if line is None:
            raise
        log.debug("the OSError behind the error line", exc_info=True)
        print(f"{prefix}error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}{interrupted}", file=sys.stderr)
        return 130
