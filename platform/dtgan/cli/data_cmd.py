"""``dtgan data``: render the embedded benchmark, import real data, describe a data set."""

from __future__ import annotations

import argparse
import os

from dtgan.data.splits import SDI_GAN_NORMAL_PER_PRODUCT, SDI_HOLDOUT_PER_CELL
from dtgan.errors import DataError

BENCHMARK_FILE = "benchmark.parquet"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="create, import and inspect data sets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="{synth,import,describe,photos}")

    synth = sub.add_parser(
        "synth", help="render the embedded SDI-like benchmark (with clean backgrounds and masks)"
    )
    synth.add_argument(
        "--out", default="data/synthetic", help=f"output folder (writes {BENCHMARK_FILE}) or .parquet path"
    )
    synth.add_argument("--size", type=int, default=128, help="image side in pixels (native 128)")
    synth.add_argument(
        "--scale", type=float, default=0.1, help="fraction of SDI's image counts (1.0 = 20k images)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same file")
    synth.add_argument(
        "--products",
        default=None,
        help="a count or names, e.g. brushed,cast,woven (the default 3) or turned,knurled,coated",
    )
    synth.add_argument(
        "--defects",
        default=None,
        help="defect shapes in order, e.g. scratch,spot (default) or crack,stain (also dent): the i-th "
        "takes SDI's i-th defect counts, the last product's last one has no gan_train images",
    )
    synth.add_argument("--threads", type=int, default=None, help="render threads (default: min(4, CPUs))")
    synth.add_argument(
        "--defect-boldness",
        type=float,
        default=1.0,
        help="wider/larger/stronger defects, e.g. 2 for the 32 px CPU presets (default 1 = SDI-like)",
    )
    synth.add_argument(
        "--held-out-per-cell",
        type=int,
        default=None,
        help="val+test images of every product x defect cell (3:7), instead of 50 x scale (min 10); e.g. a "
        "large classifier test set rendered with another --seed",
    )
    synth.set_defaults(func=_synth)

    importer = sub.add_parser("import", help="convert real data to the Parquet format")
    kinds = importer.add_subparsers(dest="import_kind", required=True, metavar="{folders,mvtec}")
    folders = kinds.add_parser(
        "folders",
        help="ROOT/<product>/<defect>/*.png|jpg|bmp|tif (needs normal/; images in sub-folders of a defect "
        "folder get its label)",
    )
    folders.add_argument("root")
    folders.add_argument(
        "--defects", default=None, help="allowed defect folders besides normal, e.g. scratch,spot"
    )
    folders.add_argument(
        "--masks",
        default=None,
        metavar="MASKROOT",
        help="defect masks in a tree mirroring ROOT: MASKROOT/<product>/<defect>/<stem>.png or <stem>_mask.png "
        "(without it, <stem>_mask.png beside an image is its mask); defect images without one are counted",
    )
    folders.add_argument(
        "--protocol",
        choices=("paper", "field"),
        default="paper",
        help="paper: Appendix A split per product x defect cell; field: 1/3 of each defect folder's images "
        "gan_train (floor, at least 1), the rest test, normal/ split gan_train/gan_holdout (as mvtec --protocol field)",
    )
    folders.add_argument(
        "--split-file",
        default=None,
        metavar="CSV",
        help="your own split: a CSV with header id,split and one row per image (id = <product>/<defect>/<path "
        "without extension>; split = gan_train, gan_holdout, val or test); unknown or unlisted ids are errors",
    )
    _add_import_options(folders)
    folders.set_defaults(func=_import_folders)
    mvtec = kinds.add_parser(
        "mvtec",
        help="MVTec AD: the paper's Table 17 labels and split, or the field's protocol (--protocol field)",
    )
    mvtec.add_argument("root")
    mvtec.add_argument(
        "--protocol",
        choices=("paper", "field"),
        default="paper",
        help="paper: Table 17's scratch/spot, Appendix A split; field: MVTec's own defect types, 1/3 of each "
        "type's anomalies gan_train (floor, at least 1), the rest test (DFMGAN, AnomalyDiffusion, SeaS)",
    )
    mvtec.add_argument(
        "--categories",
        default=None,
        help="comma-separated categories (default: carpet,leather,tile,wood for paper; "
        "carpet,grid,leather,tile,wood for field)",
    )
    _add_import_options(mvtec)
    mvtec.set_defaults(func=_import_mvtec)

    photos = sub.add_parser(
        "photos",
        help="build the small real-photo check set: crops of photographs that installed packages ship, "
        "procedural crack/stain defects with masks (docs/offline-metrics.md)",
    )
    photos.add_argument("--out", required=True, help="output .parquet path")
    photos.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    photos.add_argument("--seed", type=int, default=0, help="seed of the crops, the defects and the split")
    photos.set_defaults(func=_photos)

    describe = sub.add_parser("describe", help="print image counts per split, product and defect")
    describe.add_argument("path", help="Parquet data set (local path or URI)")
    describe.set_defaults(func=_describe)


def _add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output .parquet path")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels; other sizes are resized")
    parser.add_argument(
        "--holdout",
        type=int,
        default=None,
        help=f"val+test images per product x defect cell (3:7), at most half a cell (default "
        f"{SDI_HOLDOUT_PER_CELL}; not with --protocol field or --split-file)",
    )
    parser.add_argument(
        "--gan-normal",
        type=int,
        default=SDI_GAN_NORMAL_PER_PRODUCT,
        help="normal images per product for GAN training; the rest are synthesis sources",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split assignment")


def _split_options(args: argparse.Namespace):
    from dtgan.data.importers import SplitOptions

    if args.holdout is None:
        args.holdout = SDI_HOLDOUT_PER_CELL
    if args.holdout < 2:
        raise DataError(f"--holdout {args.holdout}: at least 2 (one val and one test image per cell)")
    if args.gan_normal < 1:
        raise DataError(f"--gan-normal {args.gan_normal}: at least 1")
    if not 16 <= args.size <= 1024:
        raise DataError(f"--size {args.size}: choose 16..1024 pixels")
    return SplitOptions(args.holdout, args.gan_normal, args.seed)


def _check_holdout(args: argparse.Namespace) -> None:
    if args.protocol == "field" and args.holdout is not None:
        raise DataError(
            "--holdout: the field protocol holds out no val set (1/3 of each defect type gan_train, the rest "
            "test); leave --holdout out or use --protocol paper"
        )
    if getattr(args, "split_file", None) is not None and args.holdout is not None:
        raise DataError("--holdout: the split file decides every image's split; leave --holdout out")


def _synth(args: argparse.Namespace) -> int:
    from dtgan.data.synth import synthesize_benchmark

    path = args.out if args.out.endswith(".parquet") else os.path.join(args.out, BENCHMARK_FILE)
    summary = synthesize_benchmark(
        path,
        size=args.size,
        scale=args.scale,
        seed=args.seed,
        defect_boldness=args.defect_boldness,
        defects=args.defects,
        products=args.products,
        threads=args.threads,
        held_out_per_cell=args.held_out_per_cell,
    )
    unseen = ", ".join(f"{p}/{d}" for p, d in summary.unseen_cells) or "none"
    print(
        f"wrote {summary.images} images ({args.size} px) to {path} in {summary.total_seconds:.2f} s: "
        f"{summary.images_per_second:.0f} images/s rendered+encoded "
        f"({summary.images_per_cpu_second:.0f} per CPU-second); no gan_train images in: {unseen}"
    )
    return 0


def _import_folders(args: argparse.Namespace) -> int:
    from dtgan.data.importers import check_out_path, import_folders

    check_out_path(args.out)
    _check_holdout(args)
    defects = [d.strip() for d in args.defects.split(",") if d.strip()] if args.defects else None
    rows = import_folders(
        args.root,
        args.out,
        args.size,
        _split_options(args),
        defects,
        args.masks,
        protocol=args.protocol,
        split_file=args.split_file,
    )
    print(f"wrote {len(rows)} images to {args.out}")
    return 0


def _import_mvtec(args: argparse.Namespace) -> int:
    from dtgan.data.importers import check_out_path
    from dtgan.data.mvtec import import_mvtec

    check_out_path(args.out)
    _check_holdout(args)
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    rows = import_mvtec(args.root, args.out, categories, args.size, _split_options(args), args.protocol)
    print(f"wrote {len(rows)} images to {args.out}")
    return 0


def _photos(args: argparse.Namespace) -> int:
    from dtgan.data.importers import check_out_path
    from dtgan.data.photos import build_photo_set

    check_out_path(args.out)
    if not 16 <= args.size <= 1024:
        raise DataError(f"--size {args.size}: choose 16..1024 pixels")
    rows = build_photo_set(args.out, args.size, args.seed)
    print(f"wrote {rows} images ({args.size} px) to {args.out}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from dtgan.data.describe import describe

    print(describe(args.path))
    return 0
