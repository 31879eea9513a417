"""The mapping network M(z, y) -> (s, c): StarGAN v2's style MLP plus DT-GAN's content branch (docs/model.md#networks, docs/model.md#mapping-network)."""

from __future__ import annotations

import torch
from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models.blocks import InstanceNorm2d, NoiseInjection, NoisyUpResBlk, select_domain, zero_normal
from dtgan.models.widths import Widths, layer_widths

NUM_SHARED_LAYERS = 4  # StarGAN: Linear(latent -> hidden) + 3 x Linear(hidden -> hidden), each with ReLU
NUM_HEAD_HIDDEN_LAYERS = 3  # StarGAN: per domain 3 x Linear(hidden -> hidden) + ReLU, then Linear(-> style)


def _mlp(dims: list[int]) -> list[nn.Module]:
    """Linear + ReLU for each consecutive pair of ``dims`` (plain ReLU, as StarGAN's mapping network)."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return layers


class ContentBranch(nn.Module):
    """Table 10c: (N, hidden) at 1 x 1 -> log2(B) noisy upsampling blocks -> 1x1 conv -> [noise] -> IN.

    ``out_channels`` is content_dim for one per-domain copy (docs/model.md#a6 ``full``) or content_dim * K for the shared
    branch with a K-way last conv (docs/model.md#a6 ``last``). ``noise_init=None`` leaves out every noise layer.
    """

    def __init__(self, w: Widths, hidden_dim: int, out_channels: int, noise_init: float | None) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(NoisyUpResBlk(b.dim_in, b.dim_out, noise_init) for b in w.mapping_content)
        )
        last = w.mapping_content[-1].dim_out if w.mapping_content else hidden_dim
        self.to_content = nn.Conv2d(last, out_channels, 1)
        self.noise = NoiseInjection(out_channels, noise_init) if noise_init is not None else nn.Identity()
        self.norm = InstanceNorm2d(out_channels, affine=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.blocks(h[:, :, None, None])  # (N, 512, 1, 1) -> 512@2 -> 512@4 -> 256@8 -> (N, 128, 16, 16)
        return self.norm(self.noise(self.to_content(x)))  # (N, out_channels, B, B)


class MappingNetwork(nn.Module):
    """M(z, y) -> (s (N, S), c (N, C, B, B) or None).

    All K style heads (and content heads) are computed, stacked to (N, K, ...) and the row of each sample's
    domain y is taken, as in StarGAN. With ``anchor_normal`` the content of y == 0 is exactly zero; with
    ``mapping_noise`` the content branch draws fresh noise on every call, in eval mode too.
    """

    def __init__(self, cfg: ModelConfig, num_domains: int) -> None:
        super().__init__()
        w = layer_widths(cfg)
        toggles = cfg.toggles
        self.num_domains, self.content_dim, self.side = num_domains, cfg.content_dim, w.bottleneck_side
        self.style_content, self.anchor_normal = toggles.style_content, toggles.anchor_normal
        hidden = cfg.mapping_hidden_dim

        self.shared = nn.Sequential(*_mlp([cfg.latent_dim] + [hidden] * NUM_SHARED_LAYERS))
        self.style_heads = nn.ModuleList(
            nn.Sequential(*_mlp([hidden] * (NUM_HEAD_HIDDEN_LAYERS + 1)), nn.Linear(hidden, cfg.style_dim))
            for _ in range(num_domains)
        )
        self.content_heads: nn.ModuleList | None = None
        self.full_content_heads = cfg.content_heads == "full"
        if self.style_content:
            noise_init = cfg.noise_strength_init if toggles.mapping_noise else None
            if self.full_content_heads:  # docs/model.md#a6 literal: one full content branch per domain
                heads = [ContentBranch(w, hidden, cfg.content_dim, noise_init) for _ in range(num_domains)]
            else:  # docs/model.md#a6 "last": one shared branch whose last 1x1 conv emits all K contents
                heads = [ContentBranch(w, hidden, cfg.content_dim * num_domains, noise_init)]
            self.content_heads = nn.ModuleList(heads)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """z (N, latent_dim), y (N,) long -> s (N, S), c (N, C, B, B) or None."""
        h = self.shared(z)  # (N, hidden)
        styles = torch.stack([head(h) for head in self.style_heads], dim=1)  # (N, K, S)
        s = select_domain(styles, y)  # (N, S)
        if self.content_heads is None:
            return s, None
        if self.full_content_heads:
            stacked = torch.stack([head(h) for head in self.content_heads], dim=1)  # (N, K, C, B, B)
        else:
            all_contents = self.content_heads[0](h)  # (N, K*C, B, B)
            stacked = all_contents.view(h.size(0), self.num_domains, self.content_dim, self.side, self.side)
        c = select_domain(stacked, y)  # (N, C, B, B)
        return s, (zero_normal(c, y) if self.anchor_normal else c)

    def noise_strength_parameters(self) -> list[nn.Parameter]:
        """The learned per-channel noise strengths (docs/model.md#a10 may give them their own learning rate)."""
        return [m.strength for m in self.modules() if isinstance(m, NoiseInjection)]

    def content_parameters(self) -> list[nn.Parameter]:
        """The content branch's parameters without the noise strengths; empty without ``style_content``."""
        if self.content_heads is None:
            return []
        noise = {id(p) for p in self.noise_strength_parameters()}
        return [p for p in self.content_heads.parameters() if id(p) not in noise]
