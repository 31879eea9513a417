"""``dtgan downstream``: the classifier augmentation study of a checkpoint (paper §4.2), mean ± std per arm."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from dtgan.cli.common import add_config_arguments, config_from_args
from dtgan.downstream.preflight import check_backbone, check_downstream, weights_label, weights_source
from dtgan.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "downstream",
        help="classifier error with real, oversampled, synthetic-balanced and Crop&Paste-balanced training sets",
    )
    parser.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        metavar="CHECKPOINT_OR_RUN",
        help="GAN checkpoint file or run folder; needed by the latent, reference and mix arms "
        "(no_aug, trad_aug and crop_paste run without one)",
    )
    add_config_arguments(parser)
    parser.add_argument("--data", default=None, help="Parquet data set; default: data.path of the config")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for downstream.json; default: the run folder of CHECKPOINT_OR_RUN, else "
        "TRAIN.OUT_DIR/downstream-PRESET",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the planned classifier runs and exit")
    parser.set_defaults(func=_downstream)


def _run_folder(checkpoint: str | None, out: Path | None, out_dir: str, preset: str | None) -> Path:
    if out is not None:
        return out
    if checkpoint is None:
        return Path(out_dir) / f"downstream-{preset or 'default'}"
    from dtgan.training.checkpoint import run_dir_of

    path = Path(checkpoint)
    return path if path.is_dir() else run_dir_of(path)


def _downstream(args: argparse.Namespace) -> int:
    from dtgan.downstream.prepare import prepare_study_data
    from dtgan.downstream.study import markdown_table, plan_jobs, run_study

    config = config_from_args(args)
    cfg = config.downstream
    if not cfg.hub_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
    run_dir = _run_folder(args.checkpoint, args.out, config.train.out_dir, config.preset)
    if cfg.protocol == "field_classification":
        return _field_classification(args, config, run_dir)
    study_data_path = run_dir / "downstream" / "study_data.pt"
    jobs = plan_jobs(cfg, study_data_path)
    source = weights_source(cfg)  # a missing weights file or weights=imagenet without any: one line, exit 2
    print(
        f"{len(jobs) // cfg.num_seeds} cells x {cfg.num_seeds} seeds = {len(jobs)} classifier runs, "
        f"{cfg.backbone} ({weights_label(source)}: {source}) at {cfg.img_size} px, {cfg.epochs} epochs"
    )
    if args.dry_run:
        for job in jobs[:: cfg.num_seeds]:
            print(f"  {job.cell.label()}")
        return 0
    check_downstream(cfg, args.checkpoint)  # before any image is read or synthesised
    nets = None
    if cfg.synthetic_arms:
        from dtgan.training.checkpoint import load_inference_nets
        from dtgan.training.environment import resolve_device

        nets = load_inference_nets(args.checkpoint, device=resolve_device(cfg.device, "downstream.device"))
    data_path = args.data or config.data.path
    data = prepare_study_data(
        cfg, data_path, nets=nets, checkpoint=args.checkpoint, crop_paste_cfg=config.crop_paste
    )
    data.save(study_data_path)
    del nets, data
    payload = run_study(cfg, study_data_path, out_path=run_dir / "downstream.json")
    print(markdown_table(payload["rows"], cfg.backbone))
    print(f"{payload['wall_seconds']:.1f} s; results: {run_dir / 'downstream.json'}")
    return 0


def _field_classification(args: argparse.Namespace, config, run_dir: Path) -> int:
    """The field's defect-type classification protocol (downstream.protocol=field_classification)."""
    from dtgan.downstream.field_classification import (
        RESULT_FILE,
        markdown_table,
        plan_summary,
        prepare_field_data,
        run_field_classification,
    )

    cfg = config.downstream
    source = weights_source(cfg)
    print(f"{plan_summary(cfg)}; {weights_label(source)}: {source}")
    check_backbone(cfg.backbone)
    if args.checkpoint is None:
        raise ConfigError(
            "downstream.protocol=field_classification: the generated defects need a generator checkpoint "
            "(CHECKPOINT_OR_RUN)"
        )
    if args.dry_run:
        return 0
    from dtgan.training.checkpoint import load_inference_nets
    from dtgan.training.environment import resolve_device

    device = resolve_device(cfg.device, "downstream.device")
    nets = load_inference_nets(args.checkpoint, device=device)
    data = prepare_field_data(cfg, args.data or config.data.path, nets, args.checkpoint)
    del nets
    out_path = run_dir / RESULT_FILE
    payload = run_field_classification(cfg, data, str(device), out_path=out_path)
    print(markdown_table(payload))
    print(f"{payload['wall_seconds']:.1f} s; results: {out_path}")
    return 0
