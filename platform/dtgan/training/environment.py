"""Where the loop runs: rank, world size, device and the hooks a distributed launcher plugs in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dtgan.errors import ConfigError


def identity_model(module: nn.Module) -> nn.Module:
    return module


def no_gradient_sync(modules: Iterable[nn.Module]) -> None:
    """Single process: gradients are already complete."""


def all_reduce_gradients(modules: Iterable[nn.Module]) -> None:
    """Average the gradients of ``modules`` over the default torch.distributed group (StyleGAN2-ADA style).

    Used instead of DDP because the G step calls ``generator.encode/decode/fg_content`` directly and R1
    differentiates D with ``autograd.grad``, neither of which DDP's forward hooks support.
    """
    import torch.distributed as dist

    world_size = dist.get_world_size()
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])  # one collective per step instead of one per tensor
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def gather_from_ranks(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (a collective: every rank must call it); ``[obj]`` in one process.

    Uses the default torch.distributed group when one is initialised (Ray Train sets it up), so the
    launcher need not pass anything.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def resolve_device(device: str, key: str = "train.device") -> torch.device:
    """The one device rule of every section (``train``, ``evaluation``, ``downstream``): ``auto`` -> cuda when
    available, else cpu; ``cuda`` without a visible GPU is a one-line ConfigError naming ``key``."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}=cuda but no CUDA device is visible; use {key}=auto or cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class Environment:
    """Process placement. Only rank 0 writes files (run folder, checkpoints, samples, metrics).

    ``prepare_model`` receives each network after it is on ``device`` (e.g. ``torch.compile``);
    ``sync_gradients`` is called after every backward with the networks about to be stepped;
    ``gather_objects`` collects one picklable object per rank (every rank calls it at the same steps).
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    prepare_model: Callable[[nn.Module], nn.Module] = identity_model
    sync_gradients: Callable[[Iterable[nn.Module]], None] = no_gradient_sync
    gather_objects: Callable[[Any], list[Any]] = gather_from_ranks

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def unwrap_model(module: nn.Module) -> nn.Module:
    """The plain module behind a DDP (``.module``) or ``torch.compile`` (``._orig_mod``) wrapper."""
    while True:
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return module
        module = inner
