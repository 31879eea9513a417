"""build_nets: the four networks of a model config, He-initialised as StarGAN v2 does (docs/model.md#initialisation)."""

from __future__ import annotations

from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models.discriminator import Discriminator
from dtgan.models.encoder import StyleEncoder
from dtgan.models.generator import Generator
from dtgan.models.mapping import MappingNetwork


class Nets(nn.ModuleDict):
    """The networks by name; ``nets.generator`` etc. work through nn.Module's attribute lookup."""

    generator: Generator
    mapping_network: MappingNetwork
    style_encoder: StyleEncoder
    discriminator: Discriminator


def he_init(module: nn.Module) -> None:
    """Kaiming-normal (fan_in, ReLU gain) weights and zero biases for every Conv2d and Linear in ``module``.

    Norm affine parameters and noise strengths keep their initial values.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_nets(model_cfg: ModelConfig, num_domains: int, num_products: int) -> Nets:
    """G, M, E and D for ``num_domains`` defect domains (K, Normal at index 0) and ``num_products`` (P)."""
    if num_domains < 1 or num_products < 1:
        raise ValueError(f"need at least one domain and one product, got K={num_domains}, P={num_products}")
    nets = Nets(
        {
            "generator": Generator(model_cfg),
            "mapping_network": MappingNetwork(model_cfg, num_domains),
            "style_encoder": StyleEncoder(model_cfg, num_domains),
            "discriminator": Discriminator(model_cfg, num_domains, num_products),
        }
    )
    he_init(nets)
    return nets
