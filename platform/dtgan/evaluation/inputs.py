"""What an evaluation reads, resolved and loaded once: the device, the data (decoded into
:class:`~dtgan.evaluation.protocol.EvaluationData`), the output folder and, for a checkpoint, its networks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.model import ModelConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.parquet_io import read_vocab
from dtgan.data.selection import round_robin
from dtgan.data.vocab import NORMAL_INDEX
from dtgan.errors import CheckpointError, DataError
from dtgan.evaluation.extractors import ClassLabelledImages
from dtgan.evaluation.feature_cache import fingerprint_images
from dtgan.evaluation.protocol import EvaluationData
from dtgan.names import check_distinct_safe_names, check_product_names
from dtgan.training.checkpoint import InferenceNets, load_inference_nets, resolve_checkpoint, run_dir_of
from dtgan.training.environment import resolve_device

EVALUATION_DIR = "evaluation"  # <run>/evaluation/step_XXXXXXXX/: a checkpoint's evaluation folder


def evaluation_folder(run_dir: str | Path, step: int) -> Path:
    """``<run>/evaluation/step_XXXXXXXX``: where ``dtgan evaluate`` writes a checkpoint's evaluation by default."""
    return Path(run_dir) / EVALUATION_DIR / f"step_{step:08d}"


@dataclass(frozen=True)
class DataInputs:
    """The inputs of a method scored on the protocol without networks of its own (Crop&Paste)."""

    device: torch.device
    data_path: str
    data: EvaluationData
    out_dir: Path


@dataclass(frozen=True)
class CheckpointInputs(DataInputs):
    """A checkpoint's evaluation inputs: the data's, and the checkpoint file with its EMA networks."""

    checkpoint: Path
    nets: InferenceNets


def check_model_matches(checkpoint: Path, saved: ModelConfig, expected: ModelConfig | None) -> None:
    """A preset given for evaluation must describe the checkpoint's networks."""
    if expected is None or expected == saved:
        return
    a, b = saved.model_dump(), expected.model_dump()
    diffs = ", ".join(f"model.{k}: saved {a[k]!r} vs preset {b[k]!r}" for k in sorted(a) if a[k] != b[k])
    raise CheckpointError(
        f"{checkpoint}: checkpoint from another model configuration ({diffs}); pass the preset the run was "
        f"trained with, or no -c"
    )


def _check_vocab(data_vocab, nets_vocab, data_path: str) -> None:
    if tuple(data_vocab.products) != tuple(nets_vocab.products) or tuple(data_vocab.defects) != tuple(
        nets_vocab.defects
    ):
        raise CheckpointError(
            f"{data_path}: products {list(data_vocab.products)} / defects {list(data_vocab.defects)} differ from the "
            f"checkpoint's {list(nets_vocab.products)} / {list(nets_vocab.defects)}; evaluate on the data the run "
            f"was trained on (--data PATH)"
        )


def load_evaluation_data(data_path: str, nets_vocab, cfg: EvaluationConfig, img_size: int) -> EvaluationData:
    """Decode the reference split, the normal sources and the removal pairs at the model's image size."""
    check_product_names(nets_vocab.products, data_path)  # metric keys, feature files and export folders
    check_distinct_safe_names(nets_vocab.defects, "defect", data_path)
    refs_ds = DefectImageDataset(data_path, splits=(cfg.reference_split,), img_size=img_size)
    _check_vocab(refs_ds.vocab, nets_vocab, data_path)
    references = refs_ds.labelled()
    sources_all = DefectImageDataset(data_path, splits=(cfg.source_split,), img_size=img_size).labelled()
    sources = sources_all.where(sources_all.y == NORMAL_INDEX)
    holdout = None
    if cfg.holdout_split != cfg.reference_split:
        holdout = (
            sources_all
            if cfg.holdout_split == cfg.source_split
            else DefectImageDataset(data_path, splits=(cfg.holdout_split,), img_size=img_size).labelled()
        )
    removal_defects = removal_clean = None
    rm_ds = DefectImageDataset(data_path, splits=(cfg.removal_split,), img_size=img_size)
    clean = getattr(rm_ds, "clean_uint8", None)
    if clean is not None:
        has_clean = (rm_ds.y != NORMAL_INDEX) & _has_clean(rm_ds)
        rows = torch.nonzero(has_clean).flatten()
        rows = rows[round_robin(rm_ds.p[rows], cfg.disentanglement_num_images)] if len(rows) else rows
        removal_defects, removal_clean = rm_ds.images_uint8[rows], clean[rows]
    return EvaluationData(
        products=tuple(nets_vocab.products),
        defects=tuple(nets_vocab.defects),
        img_size=img_size,
        reference_split=cfg.reference_split,
        references=references,
        reference_fingerprint=fingerprint_images(references.ids, references.images),
        sources=sources,
        holdout=holdout,
        holdout_split=cfg.holdout_split if holdout is not None else None,
        removal_defects=removal_defects,
        removal_clean=removal_clean,
    )


def _has_clean(ds) -> torch.Tensor:
    """(N,) bool: rows whose clean background is stored."""
    flags = getattr(ds, "has_clean", None)
    if flags is not None:
        return torch.as_tensor(flags, dtype=torch.bool)
    return torch.ones(len(ds.y), dtype=torch.bool)


def _require_defects(data: EvaluationData, data_path: str, what: str) -> None:
    if not data.defect_indices:
        raise DataError(f"{data_path}: no defect domains besides normal; nothing to {what}")


def offline_training_images(data: EvaluationData) -> ClassLabelledImages:
    """The reference split labelled product x defect: the offline extractor's training set."""
    return ClassLabelledImages.from_labelled(
        data.references, data.products, data.defects, data.reference_fingerprint
    )


def checkpoint_inputs(
    checkpoint: str | Path,
    cfg: EvaluationConfig,
    data_path: str | None = None,
    out_dir: str | Path | None = None,
    expected_model: ModelConfig | None = None,
) -> CheckpointInputs:
    """The device, the checkpoint (a file or a run folder's latest) and its networks, checked against
    ``expected_model``, its data (default: the data it was trained on) and its output folder (default:
    ``<run>/evaluation/step_XXXXXXXX``)."""
    device = resolve_device(cfg.device, "evaluation.device")
    checkpoint = resolve_checkpoint(checkpoint)
    nets = load_inference_nets(checkpoint, device=device)
    check_model_matches(checkpoint, nets.config.model, expected_model)
    data_path = data_path or nets.config.data.path
    data = load_evaluation_data(data_path, nets.vocab, cfg, nets.config.model.img_size)
    _require_defects(data, data_path, "synthesise")
    out_dir = Path(out_dir) if out_dir is not None else evaluation_folder(run_dir_of(checkpoint), nets.step)
    return CheckpointInputs(
        device=device, data_path=data_path, data=data, out_dir=out_dir, checkpoint=checkpoint, nets=nets
    )


def data_inputs(data_path: str, cfg: EvaluationConfig, img_size: int, out_dir: str | Path) -> DataInputs:
    """The device and the data at ``img_size`` of a method without a checkpoint (its labels: the data's own)."""
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device, "evaluation.device")
    data = load_evaluation_data(data_path, read_vocab(data_path), cfg, img_size)
    _require_defects(data, data_path, "paste")
    return DataInputs(device=device, data_path=data_path, data=data, out_dir=out_dir)
