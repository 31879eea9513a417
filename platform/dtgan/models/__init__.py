"""The networks of DT-GAN and its StarGAN v2 baseline: G, M, E, D built from the model config."""

from dtgan.models.build import Nets, build_nets, he_init
from dtgan.models.discriminator import DiscriminatorOutput

__all__ = ["DiscriminatorOutput", "Nets", "build_nets", "he_init"]
