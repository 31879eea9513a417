"""``dtgan evaluate``: FID/KID, IS and IC-LPIPS (latent/reference/mix, per product and over all), disentanglement
metrics and sample grids of a checkpoint, written as JSON and PNG into the run folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dtgan import keys
from dtgan.cli.evaluation_args import add_evaluation_arguments, evaluation_config_from_args
from dtgan.errors import ConfigError
from dtgan.utils.destination import check_destination, removed_on_failure
from dtgan.utils.lock import writer_lock


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="FID/KID, IS, IC-LPIPS, disentanglement metrics and grids of a checkpoint"
    )
    add_evaluation_arguments(parser)
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder; default: RUN/evaluation/step_XXXXXXXX"
    )
    parser.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="evaluate every checkpoint of the run folder and write the learning curve "
        "RUN/evaluation/curve.json and curve.png",
    )
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    cfg, expected_model = evaluation_config_from_args(args)
    out = _output_folder(args)
    with writer_lock(out, "evaluation folder"):
        if args.all_checkpoints:  # each finished checkpoint's evaluation is kept when a later one fails
            return _evaluate_curve(args, cfg)
        with removed_on_failure(out):  # a failed evaluation leaves no half-written folder
            return _evaluate_one(args, cfg, expected_model)


def _output_folder(args: argparse.Namespace) -> Path:
    """Where the reports go (``--out``, else RUN/evaluation), checked before hours of compute."""
    from dtgan.evaluation.inputs import EVALUATION_DIR
    from dtgan.training.checkpoint import resolve_checkpoint, run_dir_of

    if args.out is not None:
        return check_destination(args.out, "--out")
    checkpoint = resolve_checkpoint(args.checkpoint)
    return check_destination(run_dir_of(checkpoint) / EVALUATION_DIR, "evaluation folder")


def _evaluate_one(args: argparse.Namespace, cfg, expected_model) -> int:
    from dtgan.evaluation.defect_classifier import quality_lines
    from dtgan.evaluation.defect_recall import recall_lines
    from dtgan.evaluation.evaluate import evaluate
    from dtgan.evaluation.extractors import extractor_lines
    from dtgan.evaluation.ladder import ladder_lines

    result = evaluate(
        args.checkpoint, cfg, data_path=args.data, out_dir=args.out, expected_model=expected_model
    )
    metrics = result.metrics
    extractor = f"{result.tags[keys.TAG_FID_EXTRACTOR]}@{result.tags[keys.TAG_FID_WEIGHTS]}"
    print(f"step {result.report['step']}, features {extractor}")
    for line in extractor_lines(result.report.get("feature_extractor")):
        print(line)
    lpips = result.tags.get(keys.TAG_LPIPS_BACKBONE) or result.tags[keys.TAG_IC_LPIPS_STATUS]
    print(f"IS on {result.tags[keys.TAG_FID_EXTRACTOR]} logits; IC-LPIPS: {lpips}")
    for guidance in keys.GUIDANCES:
        ic_lpips = metrics.get(keys.ic_lpips_key(guidance))
        print(
            f"  {guidance:<9} FID {metrics[keys.fid_key(guidance)]:9.3f}   KID {metrics[keys.kid_key(guidance)]:9.5f}"
            f"   IS {metrics[keys.is_key(guidance)]:7.3f}   IC-LPIPS "
            + (f"{ic_lpips:6.4f}" if ic_lpips is not None else "not computed")
        )
    for key in keys.DISENTANGLEMENT_KEYS:
        if key in metrics:
            print(f"  {key.removeprefix(keys.EVAL_PREFIX):<18} {metrics[key]:.4f}")
    for line in recall_lines(result.report.get("defect_recall")):
        print(line)
    for line in quality_lines(result.report.get("defect_classifier")):
        print(line)
    for line in ladder_lines(result.report.get("validity_ladder")):
        print(line)
    print(
        f"  {metrics[keys.EVAL_GENERATED_IMAGES_PER_S]:.1f} generated images/s; "
        f"{result.report['wall_s']:.1f} s in all; report: {result.report_path}"
    )
    return 0


def _evaluate_curve(args: argparse.Namespace, cfg) -> int:
    from dtgan.evaluation.curve import CURVE_PLOT, evaluate_curve

    run_dir = Path(args.checkpoint)
    if not run_dir.is_dir() or args.out is not None:
        raise ConfigError(f"{run_dir}: --all-checkpoints takes a run folder (and no --out)")
    path = evaluate_curve(run_dir, cfg, data_path=args.data)
    points = json.loads(path.read_text())["points"]
    print(f"{'step':>7} {'FID mix':>9} {'KID mix':>9} {'input dep':>9} {'id SSIM':>8} {'locality':>8}")
    for point in points:
        m = point["metrics"]
        cells = [
            m.get(k)
            for k in (
                keys.fid_key("mix"),
                keys.kid_key("mix"),
                keys.EVAL_INPUT_DEPENDENCE,
                keys.EVAL_IDENTITY_SSIM,
                keys.EVAL_TRANSFER_LOCALITY,
            )
        ]
        print(f"{point['step']:>7} " + " ".join(f"{v:9.4f}" if v is not None else f"{'-':>9}" for v in cells))
    print(f"curve: {path} and {path.with_name(CURVE_PLOT)}")
    return 0
