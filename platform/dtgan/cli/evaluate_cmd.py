"""``dtgan evaluate``: FID/KID (latent/reference/mix, per product and over all), disentanglement metrics and
sample grids of a checkpoint, written as JSON and PNG into the run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtgan.cli.evaluation_args import add_evaluation_arguments, evaluation_config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="FID/KID, disentanglement metrics and grids of a checkpoint")
    add_evaluation_arguments(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder; default: RUN/evaluation/step_XXXXXXXX")
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from dtgan.evaluation import keys
    from dtgan.evaluation.evaluate import evaluate

    cfg, expected_model = evaluation_config_from_args(args)
    result = evaluate(args.checkpoint, cfg, data_path=args.data, out_dir=args.out, expected_model=expected_model)
    metrics = result.metrics
    extractor = f"{result.tags[keys.TAG_FID_EXTRACTOR]}@{result.tags[keys.TAG_FID_WEIGHTS]}"
    print(f"step {result.report['step']}, features {extractor}")
    for guidance in keys.GUIDANCES:
        print(f"  {guidance:<9} FID {metrics[keys.fid_key(guidance)]:9.3f}   KID {metrics[keys.kid_key(guidance)]:9.5f}")
    for key in keys.DISENTANGLEMENT_KEYS:
        if key in metrics:
            print(f"  {key.removeprefix(keys.EVAL_PREFIX):<18} {metrics[key]:.4f}")
    print(f"  {metrics[keys.EVAL_GENERATED_IMAGES_PER_S]:.1f} generated images/s; "
          f"{result.report['wall_s']:.1f} s in all; report: {result.report_path}")
    return 0
