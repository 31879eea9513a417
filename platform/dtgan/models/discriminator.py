"""The multi-task discriminator D(x, y): real/fake per defect domain, FG and BG classifiers (docs/model.md#networks, docs/model.md#discriminator)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models.blocks import LRELU_SLOPE, ResBlk, zero_normal
from dtgan.models.encoder import content_head, shared_trunk, style_branch
from dtgan.models.widths import layer_widths

NUM_FG_CLASSIFIER_BLOCKS = 4  # "four more pre-activation residual layers" (Table 11, docs/model.md#a11)


class DiscriminatorOutput(NamedTuple):
    """D's heads: ``logits`` (N,) real/fake of domain y; ``fg_logits`` (N, K), ``bg_logits`` (N, P) or None."""

    logits: torch.Tensor
    fg_logits: torch.Tensor | None
    bg_logits: torch.Tensor | None


class FGClassifier(nn.Module):
    """docs/model.md#a11: the content over all K slices (N, C*K, B, B) -> 4 norm-free ResBlks -> LReLU -> Linear -> (N, K).

    Each block average-pools by 2 while the map is larger than 1 x 1 (16 -> 8 -> 4 -> 2 -> 1 at 128 px; at
    B = 4 the last two blocks keep 1 x 1); a global average pool then covers any B > 16.
    """

    def __init__(self, in_dim: int, width: int, bottleneck_side: int, num_domains: int) -> None:
        super().__init__()
        blocks, side, dim = [], bottleneck_side, in_dim
        for _ in range(NUM_FG_CLASSIFIER_BLOCKS):
            down = side > 1
            blocks.append(ResBlk(dim, width, normalize=False, downsample=down))
            side, dim = (side // 2 if down else side), width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, num_domains)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.blocks(content), LRELU_SLOPE)  # (N, width, 1, 1) at 128 px
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))  # (N, K)


class Discriminator(nn.Module):
    """D(x, y) -> DiscriminatorOutput.

    The trunk and style-branch structure equal E's (own weights); the real/fake Linear gives K logits of which
    the one for y is taken (StarGAN). ``bg_classifier`` adds a Linear -> P parallel to it; ``fg_classifier``
    adds a content head (LReLU + 1x1 conv -> C*K) on the trunk and the FG classifier over all K slices.
    docs/model.md#a17 ``anchor_in_discriminator`` (with ``anchor_normal``) zeroes that content for rows with y == 0, the
    same rule as E's anchor; the default reading leaves it off because D would be told the Normal label.
    """

    def __init__(self, cfg: ModelConfig, num_domains: int, num_products: int) -> None:
        super().__init__()
        w = layer_widths(cfg)
        toggles = cfg.toggles
        self.trunk = shared_trunk(w, cfg.stem_kernel_size)
        self.branch = style_branch(w)
        self.real_fake = nn.Linear(w.adv_dim, num_domains)  # StarGAN's final 1x1 conv on the 1x1 map
        self.bg_head = nn.Linear(w.adv_dim, num_products) if toggles.bg_classifier else None
        self.fg_content: nn.Module | None = None
        self.fg_classifier: FGClassifier | None = None
        self.anchor_fg = False
        if toggles.fg_classifier:
            content_dim = cfg.content_dim * num_domains
            self.fg_content = content_head(w.trunk_dim, content_dim)
            width = cfg.fg_classifier_dim or content_dim
            self.fg_classifier = FGClassifier(content_dim, width, w.bottleneck_side, num_domains)
            self.anchor_fg = cfg.anchor_in_discriminator and toggles.anchor_normal

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> DiscriminatorOutput:
        """x (N, 3, H, W), y (N,) long -> logits (N,), fg_logits (N, K) | None, bg_logits (N, P) | None."""
        t = self.trunk(x)  # (N, 512, B, B)
        f = self.branch(t)  # (N, 512)
        logits = self.real_fake(f)[torch.arange(x.size(0), device=x.device), y]  # (N, K) -> (N,)
        bg_logits = self.bg_head(f) if self.bg_head is not None else None  # (N, P)
        fg_logits = None
        if self.fg_classifier is not None:
            content = self.fg_content(t)  # (N, C*K, B, B)
            if self.anchor_fg:
                content = zero_normal(content, y)
            fg_logits = self.fg_classifier(content)  # (N, K)
        return DiscriminatorOutput(logits, fg_logits, bg_logits)
