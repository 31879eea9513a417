"""The style-content encoder E(x, y) -> (s, c): StarGAN v2's style encoder plus a content head (docs/model.md#style-content-encoder)."""

from __future__ import annotations

import torch
from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models.blocks import LRELU_SLOPE, ResBlk, select_domain, zero_normal
from dtgan.models.widths import Widths, layer_widths


def shared_trunk(w: Widths, stem_kernel_size: int) -> nn.Sequential:
    """E/D's shared trunk: stem conv to stem_dim, 3 norm-free down ResBlks. (N, 3, H, W) -> (N, 512, B, B)."""
    k = stem_kernel_size  # docs/model.md#a4: 3x3 as StarGAN's code; Table 11 prints 1x1
    return nn.Sequential(
        nn.Conv2d(3, w.stem, k, 1, k // 2),
        *(ResBlk(b.dim_in, b.dim_out, normalize=False, downsample=b.resample) for b in w.trunk),
    )


def style_branch(w: Widths) -> nn.Sequential:
    """The rest of StarGAN's E/D: down ResBlks to 4x4, LReLU, valid conv to 1x1, LReLU, flatten.

    (N, 512, B, B) -> 512@8 -> 512@4 -> (N, 512). With B <= 4 there are no down blocks and the valid conv
    spans the whole B x B map.
    """
    dim = w.adv_dim
    return nn.Sequential(
        *(ResBlk(b.dim_in, b.dim_out, normalize=False, downsample=b.resample) for b in w.adv_branch),
        nn.LeakyReLU(LRELU_SLOPE),
        nn.Conv2d(dim, dim, w.adv_kernel),
        nn.LeakyReLU(LRELU_SLOPE),
        nn.Flatten(),
    )


def content_head(trunk_dim: int, out_channels: int) -> nn.Sequential:
    """Table 11c: LReLU -> 1x1 conv over the trunk. (N, 512, B, B) -> (N, C*K, B, B)."""
    return nn.Sequential(nn.LeakyReLU(LRELU_SLOPE), nn.Conv2d(trunk_dim, out_channels, 1))


class StyleEncoder(nn.Module):
    """E(x, y) -> (s (N, S), c (N, C, B, B) or None); the all-domain outputs are selected by y.

    With ``anchor_normal`` the content of y == 0 is exactly zero, as for the mapping network.
    """

    def __init__(self, cfg: ModelConfig, num_domains: int) -> None:
        super().__init__()
        w = layer_widths(cfg)
        toggles = cfg.toggles
        self.num_domains, self.content_dim = num_domains, cfg.content_dim
        self.anchor_normal = toggles.anchor_normal
        self.trunk = shared_trunk(w, cfg.stem_kernel_size)
        self.branch = style_branch(w)
        self.style_heads = nn.ModuleList(nn.Linear(w.adv_dim, cfg.style_dim) for _ in range(num_domains))
        self.content_head = None
        if toggles.style_content:
            self.content_head = content_head(w.trunk_dim, cfg.content_dim * num_domains)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (N, 3, H, W), y (N,) long -> s (N, S), c (N, C, B, B) or None."""
        t = self.trunk(x)  # (N, 512, B, B)
        f = self.branch(t)  # (N, 512)
        styles = torch.stack([head(f) for head in self.style_heads], dim=1)  # (N, K, S)
        s = select_domain(styles, y)  # (N, S)
        if self.content_head is None:
            return s, None
        n, _, side, _ = t.shape
        stacked = self.content_head(t).view(n, self.num_domains, self.content_dim, side, side)  # (N,K,C,B,B)
        c = select_domain(stacked, y)  # (N, C, B, B)
        return s, (zero_normal(c, y) if self.anchor_normal else c)
