"""Config of the Adam optimisers of G, M, E and D (StarGAN v2 defaults, docs/model.md#optimisation, docs/model.md#a10)."""

from __future__ import annotations

from pydantic import Field

from dtgan.config.base import Section


class OptimConfig(Section):
    """One Adam per network; M gets a 100x lower learning rate."""

    lr: float = Field(1e-4, gt=0.0, description="learning rate of G, E and D")
    mapping_lr: float = Field(1e-6, gt=0.0, description="learning rate of the mapping network M (f_lr)")
    mapping_content_lr: float | None = Field(
        None, gt=0.0, description="docs/model.md#a10: learning rate of M's content branch; null = mapping_lr"
    )
    noise_strength_lr: float | None = Field(
        None,
        gt=0.0,
        description="docs/model.md#a10: learning rate of M's noise strengths; null = that of the content branch",
    )
    beta1: float = Field(0.0, ge=0.0, lt=1.0, description="Adam beta1")
    beta2: float = Field(0.99, ge=0.0, lt=1.0, description="Adam beta2")
    weight_decay: float = Field(1e-4, ge=0.0, description="Adam's L2 weight decay (not AdamW)")
