"""``dtgan report``: the comparison tables of a study, built from its MLflow experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from dtgan.config.tracking import TrackingConfig
from dtgan.errors import ConfigError
from dtgan.tracking.locations import check_store_exists, resolve_tracking_uri
from dtgan.utils.destination import check_destination, removed_on_failure
from dtgan.utils.lock import writer_lock

FORMAT_CHOICES = ("md", "csv", "parquet", "html")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="build the comparison tables of a study from MLflow")
    parser.add_argument("--experiment", required=True, metavar="NAME", help="MLflow experiment of the study")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this folder, "
        "where the studies write); a local store that does not exist is an error",
    )
    parser.add_argument(
        "--parent-run",
        default=None,
        metavar="RUN_ID",
        help="report on this parent run's children (default: the latest study)",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMAT_CHOICES,
        default=None,
        help="file format to write (repeatable; default: md); the plots are always written",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: reports/<experiment>)"
    )
    parser.add_argument(
        "--bootstrap-samples", type=int, default=None, help="bootstrap replicates B (default 200)"
    )
    parser.add_argument("--seed", type=int, default=None, help="bootstrap seed (default 0)")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from dtgan.tracking.report import ReportConfig, build_report

    overrides = {"bootstrap_samples": args.bootstrap_samples, "bootstrap_seed": args.seed}
    try:
        config = ReportConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"report option {first['loc'][0]}: {first['msg']}") from None
    try:
        tracking = TrackingConfig(tracking_uri=args.tracking_uri)
    except ValidationError as exc:
        raise ConfigError(f"--tracking-uri: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    tracking_uri = resolve_tracking_uri(tracking)
    check_store_exists(tracking_uri)  # before MLflow opens (and would create) it
    out = check_destination(args.out or Path("reports") / args.experiment, "--out")  # before the bootstrap
    report = build_report(args.experiment, tracking_uri, args.parent_run, config)
    with writer_lock(out, "report folder"), removed_on_failure(out):
        written = report.write(out, args.formats or ["md"])
    print(report.markdown(comparisons=False), end="")
    print(f"\nwrote {len(written)} files under {out}")
    return 0
