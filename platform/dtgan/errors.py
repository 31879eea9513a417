"""User-facing errors: one line that names the file, row or key and what to do."""

from __future__ import annotations

ERROR_LINE_MAX_CHARS = 500


def error_line(error: BaseException | str, *, last: bool = False) -> str:
    """One line that says what went wrong: ``TypeName: first line of the message``, capped at 500 characters.

    ``last=True`` takes the message's last line instead: errors that wrap others (Ray's, with the remote
    traceback in the message) end with the cause.
    """
    if isinstance(error, BaseException) and last:
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[-1].strip() if lines else ''}"
    elif isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}".strip()
    else:
        text = str(error).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
    return first if len(first) <= ERROR_LINE_MAX_CHARS else first[: ERROR_LINE_MAX_CHARS - 3] + "..."


class DTGANError(Exception):
    """An error caused by the user's input; the CLI prints its message on one line and exits 2."""


class ConfigError(DTGANError):
    """A preset, an override or a config value is wrong."""


class DataError(DTGANError):
    """A data set, an image or a label is wrong."""


class CheckpointError(DTGANError):
    """A checkpoint is missing, corrupt, or from another model configuration."""


class TrainingDiverged(DTGANError):
    """A loss became NaN or inf; the message names the term and the step."""


class TrackingError(DTGANError):
    """The tracking store is unreachable or uninitialised, or a run cannot be resumed as asked."""
