"""``dtgan sample``: export synthetic defect images (folders + manifest, or Parquet with source=synthetic)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtgan.cli.evaluation_args import add_evaluation_arguments, evaluation_config_from_args
from dtgan.errors import DataError
from dtgan.utils.destination import check_destination
from dtgan.utils.lock import writer_lock


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sample", help="export synthetic defects of a checkpoint")
    add_evaluation_arguments(parser)
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (or .parquet file with --format parquet)"
    )
    parser.add_argument(
        "--guidance",
        choices=("latent", "reference", "mix"),
        default="mix",
        help="latent (z ~ N(0, I)), reference (a training image of the defect), or half of each",
    )
    parser.add_argument(
        "--per-source",
        type=_positive,
        default=1,
        metavar="N",
        help="synthetic images per source image per defect",
    )
    parser.add_argument("--products", nargs="+", default=None, help="products to translate (default: all)")
    parser.add_argument(
        "--defects", nargs="+", default=None, help="defects to paint (default: all but normal)"
    )
    parser.add_argument(
        "--max-sources",
        type=_positive,
        default=None,
        metavar="N",
        help="at most N normal sources per product (default: all of evaluation.source_split)",
    )
    parser.add_argument(
        "--format",
        choices=("folders", "parquet"),
        default="folders",
        help="DIR/<product>/<defect>/*.png + manifest.csv, or the platform's Parquet format",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the Parquet file or the earlier export (manifest.csv and its images) at --out",
    )
    parser.set_defaults(func=_sample)


def check_overwrite(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse to replace an earlier export at ``--out`` unless ``--overwrite`` says so."""
    from dtgan.evaluation.export import MANIFEST_FILE, PARQUET_FILE

    if fmt == "parquet":
        target = out if out.suffix == ".parquet" else out / PARQUET_FILE
    else:
        target = out / MANIFEST_FILE
    if target.is_file() and not overwrite:
        raise DataError(
            f"--out {out}: {target} exists (an earlier export); pass --overwrite to replace it or pick a new --out"
        )


def _sample(args: argparse.Namespace) -> int:
    from dtgan.evaluation.export import check_output

    check_output(args.out, args.format)  # before the checkpoint and the data are read
    parquet_file = args.format == "parquet" and args.out.suffix == ".parquet"
    check_destination(args.out, "--out", "file" if parquet_file else "folder")
    with writer_lock(args.out, "export folder" if not parquet_file else "export file"):
        check_overwrite(args.out, args.format, args.overwrite)
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    from dtgan.evaluation.export import export_samples
    from dtgan.evaluation.inputs import check_model_matches, load_evaluation_data
    from dtgan.training.checkpoint import load_inference_nets
    from dtgan.training.environment import resolve_device

    cfg, expected_model = evaluation_config_from_args(args)
    nets = load_inference_nets(args.checkpoint, device=resolve_device(cfg.device, "evaluation.device"))
    check_model_matches(Path(args.checkpoint), nets.config.model, expected_model)
    data = load_evaluation_data(
        args.data or nets.config.data.path, nets.vocab, cfg, nets.config.model.img_size
    )
    result = export_samples(
        nets,
        data,
        cfg,
        args.out,
        args.guidance,
        args.per_source,
        products=args.products,
        defects=args.defects,
        fmt=args.format,
        max_sources=args.max_sources,
    )
    print(f"wrote {result.images} synthetic images to {result.out_path} ({result.images_per_s:.1f} images/s)")
    return 0
