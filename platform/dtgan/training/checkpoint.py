"""Atomic checkpoints of a TrainState (+ resolved config, vocab, RNG and loader positions), and loading them.

A checkpoint is ``torch.save`` of tensors and plain types only, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dtgan.config.loader import config_from_dict
from dtgan.config.root import DTGANConfig
from dtgan.errors import CheckpointError, ConfigError
from dtgan.training.ema import EMA_NETS
from dtgan.training.environment import unwrap_model
from dtgan.training.rng import capture_rng_state, restore_rng_state
from dtgan.training.state import TrainState
from dtgan.utils.atomic import atomic_path

FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run folder, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(folder.glob("step_[0-9]*.pt")) if folder.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    path: str | Path, state: TrainState, config: DTGANConfig, vocab: Any, loaders: dict[str, dict]
) -> Path:
    """Write the whole training state atomically (temp name + rename)."""
    payload = {
        "format_version": FORMAT_VERSION,
        "config": config.model_dump(mode="json"),
        "vocab": {"products": list(vocab.products), "defects": list(vocab.defects)},
        "step": state.step,
        "nets": {name: unwrap_model(m).state_dict() for name, m in state.nets.items()},
        "nets_ema": {name: m.state_dict() for name, m in state.nets_ema.items()},
        "optimizers": {name: opt.state_dict() for name, opt in state.optimizers.items()},
        "rng": capture_rng_state(state.z_generator),
        "loaders": loaders,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


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
            raise CheckpointError(f"{path}: no checkpoints/step_*.pt in this run folder; train first or pass a .pt file")
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
        raise CheckpointError(f"{path}: not a readable dtgan checkpoint ({type(exc).__name__}); delete it or pick another") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else None
        raise CheckpointError(f"{path}: checkpoint format_version {found!r}, this dtgan reads {FORMAT_VERSION}")
    return payload


def _load_module(module: nn.Module, state_dict: dict, path: Path, name: str) -> None:
    try:
        module.load_state_dict(state_dict)
    except RuntimeError:
        raise CheckpointError(
            f"{path}: the saved '{name}' does not fit the networks built from the model config "
            "(a checkpoint from another model configuration or dtgan version)"
        ) from None


def check_compatible(payload: dict[str, Any], config: DTGANConfig, vocab: Any, path: Path) -> None:
    """Resuming needs the same model section and the same label vocabulary."""
    saved_model = payload["config"].get("model", {})
    current = config.model.model_dump(mode="json")
    differing = sorted(k for k in current.keys() | saved_model.keys() if current.get(k) != saved_model.get(k))
    if differing:
        diffs = ", ".join(f"model.{k}: saved {saved_model.get(k)!r} vs {current.get(k)!r}" for k in differing[:3])
        raise CheckpointError(f"{path}: checkpoint from another model configuration ({diffs})")
    saved_vocab = payload["vocab"]
    if list(vocab.defects) != saved_vocab["defects"] or list(vocab.products) != saved_vocab["products"]:
        raise CheckpointError(f"{path}: checkpoint labels {saved_vocab} differ from the data set's; use the same data")


def restore_train_state(
    payload: dict[str, Any], state: TrainState, config: DTGANConfig, vocab: Any, path: Path
) -> dict[str, dict]:
    """Load nets, EMA nets, optimisers, step and RNG states into ``state``; returns the loader positions."""
    check_compatible(payload, config, vocab, path)
    for name, module in state.nets.items():
        _load_module(unwrap_model(module), payload["nets"][name], path, name)
    for name, module in state.nets_ema.items():
        _load_module(module, payload["nets_ema"][name], path, f"{name} (EMA)")
    for name, opt in state.optimizers.items():
        opt.load_state_dict(payload["optimizers"][name])
    state.step = int(payload["step"])
    restore_rng_state(payload["rng"], state.z_generator)
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
    from dtgan.data.vocab import Vocab
    from dtgan.models import build_nets

    path = resolve_checkpoint(path_or_run_dir)
    payload = read_checkpoint(path)
    try:
        config = config_from_dict(payload["config"])
    except ConfigError:
        raise CheckpointError(f"{path}: its saved config no longer validates (a checkpoint from another dtgan version)") from None
    vocab = Vocab(products=tuple(payload["vocab"]["products"]), defects=tuple(payload["vocab"]["defects"]))
    nets = build_nets(config.model, num_domains=len(vocab.defects), num_products=len(vocab.products))
    loaded = {}
    for name in EMA_NETS:
        module = nets[name]
        _load_module(module, payload["nets_ema"][name], path, f"{name} (EMA)")
        loaded[name] = module.to(device).eval().requires_grad_(False)
    return InferenceNets(config=config, vocab=vocab, step=int(payload["step"]), **loaded)
