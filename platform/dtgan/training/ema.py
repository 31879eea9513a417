"""Exponential moving average of G, M and E (docs/model.md#ema): the networks used for sampling and evaluation."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

EMA_NETS = ("generator", "mapping_network", "style_encoder")


def _reset_to_pytorch_default(module: nn.Module) -> None:
    """Re-draw the Conv/Linear layers that he_init replaces with PyTorch's default init."""
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            layer.reset_parameters()


def make_ema_nets(nets: Mapping[str, nn.Module], ema_init: str) -> nn.ModuleDict:
    """Copies of G, M, E. ``before_he_init`` reproduces StarGAN's quirk: the EMA copies start from PyTorch's
    default init (StarGAN deep-copies before he_init), not from the He-initialised weights."""
    nets_ema = nn.ModuleDict({name: copy.deepcopy(nets[name]) for name in EMA_NETS})
    if ema_init == "before_he_init":
        for module in nets_ema.values():
            _reset_to_pytorch_default(module)
    for param in nets_ema.parameters():
        param.requires_grad_(False)
    return nets_ema.eval()


def _pairs(nets: Mapping[str, nn.Module], nets_ema: Mapping[str, nn.Module], what: str):
    """(EMA tensors, trained tensors) of G, M, E, in one list each; ``what`` = parameters or buffers."""
    targets: list[torch.Tensor] = []
    sources: list[torch.Tensor] = []
    for name in EMA_NETS:
        pairs = zip(getattr(nets_ema[name], what)(), getattr(nets[name], what)(), strict=True)
        for target, source in pairs:
            targets.append(target)
            sources.append(source)
    return targets, sources


@torch.no_grad()
def ema_update(nets: Mapping[str, nn.Module], nets_ema: Mapping[str, nn.Module], beta: float) -> None:
    """theta_ema <- beta * theta_ema + (1 - beta) * theta for G, M, E parameters; buffers are copied.

    One multi-tensor kernel per group (``torch._foreach_lerp_``) instead of a lerp and a copy per tensor:
    on a GPU the per-tensor form launched two kernels for each of several hundred tensors every step.
    """
    ema_params, params = _pairs(nets, nets_ema, "parameters")
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)  # = theta_ema + (1 - beta) * (theta - theta_ema)
    ema_buffers, buffers = _pairs(nets, nets_ema, "buffers")
    if ema_buffers:
        torch._foreach_copy_(ema_buffers, buffers)
