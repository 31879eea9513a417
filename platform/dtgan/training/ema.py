"""Exponential moving average of G, M and E (spec §1.3-1.4): the networks used for sampling and evaluation."""

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


@torch.no_grad()
def ema_update(nets: Mapping[str, nn.Module], nets_ema: Mapping[str, nn.Module], beta: float) -> None:
    """theta_ema <- beta * theta_ema + (1 - beta) * theta for G, M, E parameters; buffers are copied."""
    for name in EMA_NETS:
        source, target = nets[name], nets_ema[name]
        for p_ema, p in zip(target.parameters(), source.parameters(), strict=True):
            p_ema.copy_(torch.lerp(p, p_ema, beta))  # = p + beta * (p_ema - p)
        for b_ema, b in zip(target.buffers(), source.buffers(), strict=True):
            b_ema.copy_(b)
