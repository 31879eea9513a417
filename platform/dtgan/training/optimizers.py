"""One Adam per network (docs/model.md#optimisation): lr for G, E, D; mapping_lr for M with docs/model.md#a10's separate content/noise rates."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dtgan.config.optim import OptimConfig
from dtgan.training.environment import unwrap_model


def _mapping_param_groups(mapping_network: nn.Module, cfg: OptimConfig) -> list[dict]:
    """M's trunk/style heads at mapping_lr, its content branch at mapping_content_lr, noise strengths at
    noise_strength_lr (each null = the rate of the group before it)."""
    content_lr = cfg.mapping_content_lr if cfg.mapping_content_lr is not None else cfg.mapping_lr
    noise_lr = cfg.noise_strength_lr if cfg.noise_strength_lr is not None else content_lr
    noise = list(mapping_network.noise_strength_parameters())
    noise_ids = {id(p) for p in noise}
    content = [p for p in mapping_network.content_parameters() if id(p) not in noise_ids]
    special = noise_ids | {id(p) for p in content}
    base = [p for p in mapping_network.parameters() if id(p) not in special]
    groups = [
        {"params": base, "lr": cfg.mapping_lr},
        {"params": content, "lr": content_lr},
        {"params": noise, "lr": noise_lr},
    ]
    return [g for g in groups if g["params"]]


def build_optimizers(
    nets: Mapping[str, nn.Module], cfg: OptimConfig, fused: bool = False
) -> dict[str, torch.optim.Adam]:
    """Adam with betas (beta1, beta2) and L2 weight decay (not AdamW) for each of G, M, E, D; ``fused``
    selects the fused kernels (same update rule)."""

    def adam(params) -> torch.optim.Adam:
        return torch.optim.Adam(
            params,
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            weight_decay=cfg.weight_decay,
            fused=fused or None,
        )

    return {
        "generator": adam(nets["generator"].parameters()),
        "mapping_network": adam(_mapping_param_groups(unwrap_model(nets["mapping_network"]), cfg)),
        "style_encoder": adam(nets["style_encoder"].parameters()),
        "discriminator": adam(nets["discriminator"].parameters()),
    }
