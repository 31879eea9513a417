"""User-facing errors: one line that names the file, row or key and what to do."""

from __future__ import annotations


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
