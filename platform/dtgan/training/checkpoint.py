"""Atomic checkpoints of a TrainState (+ resolved config, vocab, RNG and loader positions), and loading them.

A checkpoint is ``torch.save`` of tensors and plain types only, so it loads with ``weights_only=True``. Every
tensor in it is finite: a checkpoint that would hold a NaN or an inf is never written, and one that does is
refused when read, so that "the last good checkpoint" is good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dtgan.config.loader import config_from_dict
from dtgan.config.root import DTGANConfig
from dtgan.data.vocab import Vocab
from dtgan.errors import CheckpointError, ConfigError, TrainingDiverged
from dtgan.keys import CHECKPOINT_DIR
from dtgan.models import build_nets
from dtgan.training.ema import EMA_NETS
from dtgan.training.environment import unwrap_model
from dtgan.training.rng import capture_rng_state, restore_rank_rng_state
from dtgan.training.state import TrainState
from dtgan.utils.atomic import atomic_path

FORMAT_VERSION = 1
_PREFIX, _SUFFIX = "step_", ".pt"
_GLOB = f"{_PREFIX}[0-9]*{_SUFFIX}"
# What inference needs of a payload (save_checkpoint): the EMA nets and what explains them (no discriminator,
# no optimiser state); the generator MLflow registers keeps these (inference_payload).
INFERENCE_KEYS = ("format_version", "config", "vocab", "step", "nets_ema")


def checkpoint_name(step: int) -> str:
    """``step_XXXXXXXX.pt``: the file name of the checkpoint of ``step`` (names sort by step)."""
    return f"{_PREFIX}{step:08d}{_SUFFIX}"


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / checkpoint_name(step)


def checkpoint_step(path: str | Path) -> int:
    """The step of a checkpoint file named by ``checkpoint_name`` (``.../step_00000120.pt`` -> 120)."""
    name = Path(path).name
    digits = name.removeprefix(_PREFIX).removesuffix(_SUFFIX)
    if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX) and digits.isdigit()):
        raise CheckpointError(f"{path}: not a checkpoint file name ({checkpoint_name(0)} form)")
    return int(digits)


def checkpoints_in(folder: str | Path) -> list[Path]:
    """The checkpoint files directly in ``folder`` (a run's checkpoints folder, a restored Ray/Tune
    checkpoint), oldest first; none when the folder does not exist."""
    folder = Path(folder)
    return sorted(folder.glob(_GLOB)) if folder.is_dir() else []


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run folder, oldest first."""
    return checkpoints_in(Path(run_dir) / CHECKPOINT_DIR)


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder of ``<run>/checkpoints/step_X.pt`` (else the checkpoint's own folder)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else checkpoint.parent


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


SAVED_TENSORS = ("nets", "nets_ema", "optimizers")  # the parts of a checkpoint that must be finite


def first_non_finite(tree: Any, name: str = "") -> str | None:
    """The dotted name of the first floating tensor in a nested dict/list holding a NaN or an inf, or None."""
    if isinstance(tree, torch.Tensor):
        finite = not (tree.is_floating_point() or tree.is_complex()) or bool(torch.isfinite(tree).all())
        return None if finite else name
    if isinstance(tree, dict):
        children = ((f"{name}.{k}" if name else str(k), v) for k, v in tree.items())
    elif isinstance(tree, list | tuple):
        children = ((f"{name}.{i}", v) for i, v in enumerate(tree))
    else:
        return None
    return next(
        (found for child_name, child in children if (found := first_non_finite(child, child_name))), None
    )


def _non_finite_in(payload: dict[str, Any]) -> str | None:
    return first_non_finite({key: payload[key] for key in SAVED_TENSORS if key in payload})


def state_device(state: TrainState) -> torch.device:
    """The device the state's networks are on."""
    return next(state.nets.parameters()).device


def save_checkpoint(
    path: str | Path,
    state: TrainState,
    config: DTGANConfig,
    vocab: Any,
    loaders: dict[str, dict],
    rng_states: list[dict[str, Any]] | None = None,
) -> Path:
    """Write the whole training state atomically (temp name + rename).

    ``rng_states``: every rank's RNG states in rank order (``Environment.gather_objects``); default: this
    process's alone. ``rng`` keeps rank 0's for readers of the single-rank form.
    """
    per_rank = rng_states or [capture_rng_state(state.z_generator, state_device(state))]
    payload = {
        "format_version": FORMAT_VERSION,
        "config": config.model_dump(mode="json"),
        "vocab": {"products": list(vocab.products), "defects": list(vocab.defects)},
        "step": state.step,
        "nets": {name: unwrap_model(m).state_dict() for name, m in state.nets.items()},
        "nets_ema": {name: m.state_dict() for name, m in state.nets_ema.items()},
        "optimizers": {name: opt.state_dict() for name, opt in state.optimizers.items()},
        "rng": per_rank[0],
        "rng_per_rank": per_rank,
        "loaders": loaders,
    }
    bad = _non_finite_in(payload)
    if bad is not None:
        raise TrainingDiverged(f"{bad} became non-finite at step {state.step}; {path} was not written")
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def sweep_partial_checkpoints(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that never finished (a process killed mid-write);
    call only while no other process writes to this run folder."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    partial = sorted(folder.glob(f".{_GLOB}.*.tmp")) if folder.is_dir() else []
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` latest checkpoints; step 0's (``train.checkpoint_at_start``) stays."""
    initial = checkpoint_path(run_dir, 0)
    for old in list_checkpoints(run_dir)[:-keep]:
        if old != initial:
            old.unlink(missing_ok=True)


def resolve_checkpoint(path_or_run_dir: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run folder."""
    path = Path(path_or_run_dir)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(
                f"{path}: no {CHECKPOINT_DIR}/{_PREFIX}*{_SUFFIX} in this run folder; train first or pass a .pt file"
            )
        return latest
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file or run folder")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload (on the CPU), or a one-line CheckpointError."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file raises many different types
        raise CheckpointError(
            f"{path}: not a readable dtgan checkpoint ({type(exc).__name__}); delete it or pick another"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else None
        raise CheckpointError(
            f"{path}: checkpoint format_version {found!r}, this dtgan reads {FORMAT_VERSION}"
        )
    bad = _non_finite_in(payload)
    if bad is not None:
        raise CheckpointError(
            f"{path}: the checkpoint of step {payload.get('step')} holds non-finite values ({bad}); "
            "the run had diverged by then: use an earlier checkpoint"
        )
    return payload


def inference_payload(payload: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``INFERENCE_KEYS`` part of a checkpoint's payload, or a one-line CheckpointError naming what lacks."""
    missing = [k for k in INFERENCE_KEYS if k not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}; is it a dtgan training checkpoint?"
        )
    return {k: payload[k] for k in INFERENCE_KEYS}


def _load_module(module: nn.Module, state_dict: dict, path: Path, name: str) -> None:
    try:
        module.load_state_dict(state_dict)
    except RuntimeError:
        raise CheckpointError(
            f"{path}: the saved '{name}' does not fit the networks built from the model config "
            "(a checkpoint from another model configuration or dtgan version)"
        ) from None


# Keys a resume may change: how long to train, how often to write, where, on what; none of them changes what
# steps 1..k computed. Any other difference is refused (the optimiser, losses and schedules would silently
# disagree with config.yaml). Prefixes end with "."; the changes are recorded (run_dir.CONFIG_CHANGES_FILE).
RESUMABLE_KEYS = (
    "preset",
    "train.total_steps",
    "train.log_every_steps",
    "train.sample_every_steps",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "train.out_dir",
    "train.run_name",
    "train.device",
    "train.performance.",  # speed options (distributed.performance in older versions)
    "data.loader_workers",
    "tracking.",
    "evaluation.",
    "downstream.",
    "study.",
    "distributed.",
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _resumable(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUMABLE_KEYS)


def _check_same_model(payload: dict[str, Any], config: DTGANConfig, path: Path) -> None:
    saved_model = payload["config"].get("model", {})
    current = config.model.model_dump(mode="json")
    differing = sorted(k for k in current.keys() | saved_model.keys() if current.get(k) != saved_model.get(k))
    if differing:
        diffs = ", ".join(
            f"model.{k}: saved {saved_model.get(k)!r} vs {current.get(k)!r}" for k in differing[:3]
        )
        raise CheckpointError(f"{path}: checkpoint from another model configuration ({diffs})")


def resume_changes(payload: dict[str, Any], config: DTGANConfig, path: Path) -> dict[str, dict[str, Any]]:
    """``{key: {"before", "after"}}`` of the resumable keys ``config`` changes against the checkpoint's config;
    a one-line CheckpointError naming the other changed keys when there are any."""
    _check_same_model(payload, config, path)
    saved, current = _flatten(payload["config"]), _flatten(config.model_dump(mode="json"))
    changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
    refused = [k for k in changed if not _resumable(k)]
    if refused:
        diffs = ", ".join(f"{k} (saved {saved.get(k)!r}, now {current.get(k)!r})" for k in refused[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise CheckpointError(
            f"{path}: resuming with changed {diffs}{more}; steps 1..{payload.get('step')} ran with the saved values: "
            "drop these overrides, or start a new run (train.run_name)"
        )
    return {k: {"before": saved.get(k), "after": current.get(k)} for k in changed}


def check_compatible(payload: dict[str, Any], config: DTGANConfig, vocab: Any, path: Path) -> None:
    """Resuming needs the same model section, the same label vocabulary, and no change but resumable keys."""
    resume_changes(payload, config, path)
    saved_vocab = payload["vocab"]
    if list(vocab.defects) != saved_vocab["defects"] or list(vocab.products) != saved_vocab["products"]:
        raise CheckpointError(
            f"{path}: checkpoint labels {saved_vocab} differ from the data set's; use the same data"
        )


def match_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout.

    ``torch.load`` keeps the strides a tensor was saved with, so moments written under channels_last come back
    channels_last even where the networks are now contiguous (and the other way); fused Adam on CUDA refuses
    such a mix. The values are unchanged.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            slots = optimizer.state.get(param, {})
            for key, value in slots.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == param.shape
                    and value.stride() != param.stride()
                ):
                    slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def restore_train_state(
    payload: dict[str, Any],
    state: TrainState,
    config: DTGANConfig,
    vocab: Any,
    path: Path,
    *,
    rank: int = 0,
) -> dict[str, dict]:
    """Load nets, EMA nets, optimisers, step and rank ``rank``'s RNG states into ``state``; returns the loader
    positions. Works whatever the devices, ranks, memory layout or precision the checkpoint was written with."""
    check_compatible(payload, config, vocab, path)
    for name, module in state.nets.items():
        _load_module(unwrap_model(module), payload["nets"][name], path, name)
    for name, module in state.nets_ema.items():
        _load_module(module, payload["nets_ema"][name], path, f"{name} (EMA)")
    for name, opt in state.optimizers.items():
        opt.load_state_dict(payload["optimizers"][name])
        match_parameter_layout(opt)
    state.step = int(payload["step"])
    restore_rank_rng_state(
        payload.get("rng_per_rank") or [payload["rng"]],
        state.z_generator,
        rank=rank,
        seed=config.train.seed,
        step=state.step,
        device=state_device(state),
    )
    return payload["loaders"]


@dataclass(frozen=True)
class InferenceNets:
    """The EMA networks of a checkpoint in eval mode, with the config and labels they were trained with."""

    config: DTGANConfig
    vocab: Any  # dtgan.data.vocab.Vocab
    generator: nn.Module
    mapping_network: nn.Module
    style_encoder: nn.Module
    step: int


def load_inference_nets(path_or_run_dir: str | Path, device: str | torch.device = "cpu") -> InferenceNets:
    """G, M, E (EMA) of a checkpoint file or of the latest checkpoint of a run folder, on ``device``."""

    path = resolve_checkpoint(path_or_run_dir)
    payload = read_checkpoint(path)
    try:
        config = config_from_dict(payload["config"])
    except ConfigError:
        raise CheckpointError(
            f"{path}: its saved config no longer validates (a checkpoint from another dtgan version)"
        ) from None
    vocab = Vocab(products=tuple(payload["vocab"]["products"]), defects=tuple(payload["vocab"]["defects"]))
    nets = build_nets(config.model, num_domains=len(vocab.defects), num_products=len(vocab.products))
    loaded = {}
    for name in EMA_NETS:
        module = nets[name]
        _load_module(module, payload["nets_ema"][name], path, f"{name} (EMA)")
        loaded[name] = module.to(device).eval().requires_grad_(False)
    return InferenceNets(config=config, vocab=vocab, step=int(payload["step"]), **loaded)
