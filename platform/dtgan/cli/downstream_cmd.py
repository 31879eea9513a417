"""``dtgan downstream``: the classifier augmentation study of a checkpoint (paper §4.2), mean ± std per arm."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from dtgan.cli.common import add_config_arguments, config_from_args, run_config_from_args
from dtgan.downstream.preflight import (
    CACHE,
    FILE,
    check_backbone,
    check_downstream,
    weights_label,
    weights_source,
)
from dtgan.errors import ConfigError, DataError
from dtgan.keys import SCOPE_ALL
from dtgan.utils.destination import check_destination
from dtgan.utils.lock import writer_lock

log = logging.getLogger(__name__)

# What a preset may change on an existing run's downstream study (the model and its data stay the run's).
DOWNSTREAM_SECTIONS = ("downstream", "crop_paste")


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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the planned classifier runs, run every check of the real run that needs no training "
        "(backbone, weights file, checkpoint, data labels and counts, output folder) and exit; non-zero when "
        "the real run would fail them",
    )
    parser.set_defaults(func=_downstream)


def _run_folder(checkpoint: str | None, out: Path | None, out_dir: str, preset: str | None) -> Path:
    if out is not None:
        return out
    if checkpoint is None:
        return Path(out_dir) / f"downstream-{preset or 'default'}"
    from dtgan.training.checkpoint import run_dir_of

    path = Path(checkpoint)
    return path if path.is_dir() else run_dir_of(path)


def _config(args: argparse.Namespace):
    """On an existing run: its saved config, the preset changing only the study's sections; else the preset."""
    if args.checkpoint is not None and Path(args.checkpoint).exists():
        return run_config_from_args(args, args.checkpoint, DOWNSTREAM_SECTIONS)
    return config_from_args(args)  # no run (or a missing one, reported by the checks below)


def _downstream(args: argparse.Namespace) -> int:
    from dtgan.downstream.prepare import prepare_study_data
    from dtgan.downstream.study import markdown_table, plan_jobs, run_study

    config = _config(args)
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
    data_path = args.data or config.data.path
    check_downstream(cfg, args.checkpoint)  # before any image is read or synthesised
    check_destination(run_dir, "--out" if args.out is not None else "the run folder")
    check_weights_load(cfg, source)
    if args.dry_run:
        check_study_inputs(cfg, data_path, args.checkpoint)
        for job in jobs[:: cfg.num_seeds]:
            print(f"  {job.cell.label()}")
        print("dry run: the checks passed; no image was read, nothing was written")
        return 0
    with writer_lock(run_dir / "downstream", "downstream study folder"):
        nets = None
        if cfg.synthetic_arms:
            from dtgan.training.checkpoint import load_inference_nets
            from dtgan.training.environment import resolve_device

            nets = load_inference_nets(
                args.checkpoint, device=resolve_device(cfg.device, "downstream.device")
            )
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


def check_weights_load(cfg, source: str) -> None:
    """A local weights file (or cached copy) loads into the backbone: checked once before any synthesis, not in
    the first classifier job after it."""
    if source.startswith((f"{FILE}:", f"{CACHE}:")):
        from dtgan.downstream.classifier import build_classifier  # loads timm

        build_classifier(cfg, num_classes=2, with_domain_head=False)


def check_study_inputs(cfg, data_path: str, checkpoint: str | None) -> None:
    """What the real run would find wrong after reading data (``--dry-run``), from the labels alone: the data
    set, its val/test rows, its scopes, enough normals per product for the largest classifier size, the
    checkpoint's labels."""
    from dtgan.data.describe import count_cells
    from dtgan.downstream.prepare import _check_scopes

    vocab, counts = count_cells(data_path)
    products = tuple(vocab.products)
    _check_scopes(cfg, products)
    splits = {split for split, _, _ in counts}
    if not {"val", "test"} <= splits:
        raise DataError(
            f"{data_path}: the classifier study needs 'val' and 'test' rows; re-split the data set"
        )
    normal = vocab.defects[0]
    biggest = max(cfg.normal_images_per_product)
    reserved = cfg.synthesis_sources_per_product if cfg.synthesis_sources == "holdout" else 0
    reserved = reserved if isinstance(reserved, int) and cfg.balanced_arms else 0
    scoped = products if SCOPE_ALL in cfg.products else tuple(p for p in products if p in cfg.products)
    for product in scoped:
        normals = counts[("gan_train", product, normal)] + counts[("gan_holdout", product, normal)]
        if normals - reserved < biggest:
            raise DataError(
                f"{data_path}: product '{product}' has {normals} gan_train + gan_holdout normals"
                + (f", {reserved} of them reserved as synthesis sources" if reserved else "")
                + f", fewer than downstream.normal_images_per_product={biggest}; lower it"
                + (" or set downstream.synthesis_sources=classifier_normals" if reserved else "")
            )
    if cfg.synthetic_arms and checkpoint is not None:
        from dtgan.training.checkpoint import read_checkpoint

        saved = read_checkpoint(checkpoint)["vocab"]
        if tuple(saved["products"]) != products or tuple(saved["defects"]) != tuple(vocab.defects):
            raise DataError(
                f"{checkpoint}: trained on products {list(saved['products'])} and defects {list(saved['defects'])}, "
                f"the data set '{data_path}' has {list(products)} and {list(vocab.defects)}; use the checkpoint "
                "of a GAN trained on this data"
            )
