"""Comparison reports: the paper's tables, with confidence intervals and plots, built from an MLflow study."""

from dtgan.tracking.report.build import Report, build_report, build_report_from_runs
from dtgan.tracking.report.config import ReportConfig

__all__ = ["Report", "ReportConfig", "build_report", "build_report_from_runs"]
