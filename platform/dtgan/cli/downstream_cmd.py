"""``dtgan downstream``: the classifier augmentation study of a checkpoint (paper §4.2), mean ± std per arm."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from dtgan.cli.common import add_config_arguments, config_from_args
from dtgan.errors import ConfigError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "downstream", help="classifier error with real, oversampled and synthetic-balanced training sets"
    )
    parser.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        metavar="CHECKPOINT_OR_RUN",
        help="GAN checkpoint file or run folder; needed by the latent, reference and mix arms",
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
    from dtgan.downstream.classifier import pretrained_source
    from dtgan.downstream.prepare import prepare_study_data
    from dtgan.downstream.study import markdown_table, plan_jobs, run_study

    config = config_from_args(args)
    cfg = config.downstream
    if not cfg.hub_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
    run_dir = _run_folder(args.checkpoint, args.out, config.train.out_dir, config.preset)
    study_data_path = run_dir / "downstream" / "study_data.pt"
    jobs = plan_jobs(cfg, study_data_path)
    print(
        f"{len(jobs) // cfg.num_seeds} cells x {cfg.num_seeds} seeds = {len(jobs)} classifier runs, "
        f"{cfg.backbone} ({pretrained_source(cfg)} weights) at {cfg.img_size} px, {cfg.epochs} epochs"
    )
    if args.dry_run:
        for job in jobs[:: cfg.num_seeds]:
            print(f"  {job.cell.label()}")
        return 0
    if cfg.synthetic_arms and args.checkpoint is None:
        raise ConfigError(
            f"downstream.arms {list(cfg.synthetic_arms)} need CHECKPOINT_OR_RUN; pass one, or "
            "-o 'downstream.arms=[no_aug,trad_aug]' for the real-data arms only"
        )
    nets = None
    if cfg.synthetic_arms:
        from dtgan.training.checkpoint import load_inference_nets
        from dtgan.training.environment import resolve_device

        nets = load_inference_nets(args.checkpoint, device=resolve_device(cfg.device, "downstream.device"))
    data_path = args.data or config.data.path
    data = prepare_study_data(cfg, data_path, nets=nets, checkpoint=args.checkpoint)
    data.save(study_data_path)
    del nets, data
    payload = run_study(cfg, study_data_path, out_path=run_dir / "downstream.json")
    print(markdown_table(payload["rows"], cfg.backbone))
    print(f"{payload['wall_seconds']:.1f} s; results: {run_dir / 'downstream.json'}")
    return 0
