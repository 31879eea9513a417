"""``dtgan evaluate-crop-paste``: the Crop&Paste baseline on the same FID/KID protocol and extractor as a preset's
GAN runs, optionally logged into a study's MLflow experiment so that its report shows the row beside the GANs."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtgan import keys
from dtgan.cli.common import add_config_arguments, config_from_args
from dtgan.errors import ConfigError
from dtgan.utils.destination import check_destination, removed_on_failure
from dtgan.utils.lock import writer_lock

RUN_KEY = "crop_paste"  # the trial key (and run name) of the baseline's run under a study


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-crop-paste",
        help="FID/KID of Crop&Paste (real masked defects pasted onto normals): the cheapest baseline",
    )
    add_config_arguments(parser)
    parser.add_argument("--data", metavar="PATH", default=None, help="Parquet data set; default: data.path")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder; default: TRAIN.OUT_DIR/crop_paste-PRESET/evaluation",
    )
    parser.add_argument(
        "--experiment",
        metavar="NAME",
        default=None,
        help="also log a run (tags variant=method=crop_paste) under the latest study of this MLflow experiment "
        "(store: tracking.tracking_uri); `dtgan report --experiment NAME` then lists it",
    )
    parser.add_argument(
        "--parent-run",
        metavar="RUN_ID",
        default=None,
        help="the study run to log under (default: the latest)",
    )
    parser.set_defaults(func=_evaluate_crop_paste)


def _evaluate_crop_paste(args: argparse.Namespace) -> int:
    from dtgan.evaluation.crop_paste_evaluate import evaluate_crop_paste
    from dtgan.evaluation.defect_classifier import quality_lines
    from dtgan.evaluation.defect_recall import recall_lines
    from dtgan.evaluation.ladder import ladder_lines

    config = config_from_args(args)
    if args.parent_run is not None and args.experiment is None:
        raise ConfigError("--parent-run needs --experiment NAME (the experiment that holds the study run)")
    tracker = parent = None
    if args.experiment is not None:  # the store and the study must exist before any image is pasted
        from dtgan.tracking.mlflow.runs import Tracker

        tracker = Tracker.from_config(
            config.tracking
        )  # an existing store: a missing one is an error, not made
        parent = args.parent_run or tracker.latest_study_run(args.experiment)
    out = args.out or Path(config.train.out_dir) / f"crop_paste-{config.preset or 'default'}" / "evaluation"
    check_destination(out, "--out" if args.out else "the evaluation folder")  # before any image is pasted
    with writer_lock(out, "evaluation folder"), removed_on_failure(out):
        result = evaluate_crop_paste(
            args.data or config.data.path, config.evaluation, config.crop_paste, config.model.img_size, out
        )
    metrics = result.metrics
    extractor = f"{result.tags[keys.TAG_FID_EXTRACTOR]}@{result.tags[keys.TAG_FID_WEIGHTS]}"
    print(f"Crop&Paste at {config.model.img_size} px, features {extractor} (scored under the mix keys)")
    print(
        f"  FID {metrics[keys.fid_key('mix')]:9.3f}   KID {metrics[keys.kid_key('mix')]:9.5f}   (all products)"
    )
    for product in result.report["data"]["products"]:
        key = keys.fid_key("mix", product)
        if key in metrics:
            print(
                f"  {product:<12} FID {metrics[key]:9.3f}   KID {metrics[keys.kid_key('mix', product)]:9.5f}"
            )
    for key in (keys.EVAL_TRANSFER_LOCALITY, keys.EVAL_TRANSFER_BG_PSNR):
        print(f"  {key.removeprefix(keys.EVAL_PREFIX):<18} {metrics[key]:.4f}")
    for line in [
        *recall_lines(result.report.get("defect_recall")),
        *quality_lines(result.report.get("defect_classifier")),
        *ladder_lines(result.report.get("validity_ladder")),
    ]:
        print(line)
    print(f"  report: {result.report_path}")
    if tracker is not None:
        run_id = _log(tracker, parent, config, result)
        print(f"MLflow: run {run_id} (variant crop_paste) under study run {parent} of '{args.experiment}'")
    return 0


def _log(tracker, parent_run_id: str, config, result) -> str:
    """One trial run under the study: params, tags, eval/* metrics, the evaluation folder and its features."""
    from dtgan.search.trial import log_evaluation

    with tracker.trial(
        parent_run_id,
        RUN_KEY,
        config,
        tags=result.tags,
        run_name=RUN_KEY,
        description="Crop&Paste baseline: real defects cut out by their masks and pasted (feathered edge, random "
        "place and flip) onto the same normal sources; scored like the GAN runs, under the mix keys",
    ) as trial:
        if not trial.finished:
            tracker.log_metrics(trial.run_id, result.metrics, step=0)
            log_evaluation(tracker, trial.run_id, result)
    return trial.run_id
