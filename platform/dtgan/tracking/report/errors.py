"""The report's user error."""

from __future__ import annotations

from dtgan.errors import DTGANError


class ReportError(DTGANError):
    """The experiment to report on is missing, empty, or not a dtgan study."""
