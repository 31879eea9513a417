"""DT-GAN and StarGAN v2 losses: one function per term of Eq. 1-8, and the D/G objectives that sum them."""

from dtgan.losses.adversarial import adversarial_loss, r1_penalty
from dtgan.losses.classification import bg_classification_loss, fg_classification_loss
from dtgan.losses.diversity import diversity_loss_mixed, diversity_loss_pair
from dtgan.losses.objectives import Batch, discriminator_loss, generator_loss
from dtgan.losses.reconstruction import (
    content_consistency_loss,
    content_reconstruction_loss,
    cycle_loss,
    style_reconstruction_loss,
)

__all__ = [
    "Batch",
    "adversarial_loss",
    "bg_classification_loss",
    "content_consistency_loss",
    "content_reconstruction_loss",
    "cycle_loss",
    "discriminator_loss",
    "diversity_loss_mixed",
    "diversity_loss_pair",
    "fg_classification_loss",
    "generator_loss",
    "r1_penalty",
    "style_reconstruction_loss",
]
