"""The generator G(x, s, c): StarGAN v2's encoder, DT-GAN's FG/BG split and either decoder (docs/model.md#networks, docs/model.md#generator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models.blocks import LRELU_SLOPE, AdainResBlk, INResBlk, InstanceNorm2d, ResBlk, instance_norm
from dtgan.models.widths import concat_injection, layer_widths


def _to_rgb(dim: int, norm_act: bool) -> nn.Module:
    """StarGAN's to_rgb (IN(affine) -> LReLU -> 1x1 conv to 3), or the bare 1x1 conv; never a tanh."""
    conv = nn.Conv2d(dim, 3, 1)
    if not norm_act:
        return conv
    return nn.Sequential(InstanceNorm2d(dim, affine=True), nn.LeakyReLU(LRELU_SLOPE), conv)


class Generator(nn.Module):
    """G(x, s, c) -> x_fake (N, 3, H, W).

    The encoder maps x to h (N, max_conv_dim, B, B); its first ``max_conv_dim - content_dim`` channels are the
    background BG_G(x), the last ``content_dim`` the foreground FG_G(x). With ``style_content`` the FG slice
    is discarded and the target content c takes its place (or, docs/model.md#a7 ``concat``, c is appended to all of h). The
    unified decoder is StarGAN's AdaIN decoder; with ``separate_decoders`` a BG decoder (IN) and a FG decoder
    (AdaIN with s) run side by side and a fusion layer maps their concatenation to RGB.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = layer_widths(cfg)
        toggles = cfg.toggles
        self.style_content = toggles.style_content
        self.separate_decoders = toggles.separate_decoders
        self.concat = concat_injection(cfg)
        self.bg_dim, self.content_dim = w.bg, w.content

        k = cfg.stem_kernel_size  # docs/model.md#a4: 3x3 as in StarGAN's code (the tables print 1x1)
        self.from_rgb = nn.Conv2d(3, w.stem, k, 1, k // 2)
        self.encoder = nn.ModuleList(
            ResBlk(b.dim_in, b.dim_out, normalize=True, downsample=b.resample) for b in w.encoder
        )
        if self.separate_decoders:
            self.bg_decoder = nn.ModuleList(
                INResBlk(b.dim_in, b.dim_out, upsample=b.resample) for b in w.bg_decoder
            )
            self.fg_decoder = nn.ModuleList(
                AdainResBlk(b.dim_in, b.dim_out, cfg.style_dim, upsample=b.resample) for b in w.fg_decoder
            )
            self.bg_out_dim = w.bg_decoder[-1].dim_out
            fused = self.bg_out_dim + w.fg_decoder[-1].dim_out  # 448 + 64 = 512 at 128 px
            self.fusion = _to_rgb(fused, norm_act=cfg.fusion == "norm_act_conv")  # docs/model.md#a5
        else:
            self.decoder = nn.ModuleList(
                AdainResBlk(b.dim_in, b.dim_out, cfg.style_dim, upsample=b.resample)
                for b in w.unified_decoder
            )
            self.to_rgb = _to_rgb(w.unified_decoder[-1].dim_out, norm_act=True)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) -> h (N, max_conv_dim, B, B)."""
        h = self.from_rgb(x)
        for block in self.encoder:
            h = block(h)
        return h

    def fg_content(self, h: torch.Tensor) -> torch.Tensor:
        """FG_G: the last ``content_dim`` channels of h, (N, C, B, B); used by the content loss."""
        return h[:, self.bg_dim :]

    def decode_background(self, h: torch.Tensor) -> torch.Tensor | None:
        """The BG decoder's share of the output, (N, 3, H, W), with separate decoders; None otherwise.

        The fusion acts per channel (IN, LReLU) before a 1x1 conv, which is linear, so
        fusion([bg, fg]) = conv_bg(act(bg)) + conv_fg(act(fg)) + bias exactly (up to float summation order).
        The BG part depends on h alone, not on (s, c): one pass serves every mix of the same sources.
        """
        if not self.separate_decoders:
            return None
        bg = h[:, : self.bg_dim]  # (N, 448, 16, 16)
        for block in self.bg_decoder:
            bg = block(bg)  # -> (N, 448, 128, 128)
        return self._fusion_part(bg, slice(0, bg.size(1)), with_bias=True)

    def _fusion_part(self, feats: torch.Tensor, channels: slice, with_bias: bool) -> torch.Tensor:
        """The fusion applied to the ``channels`` slice of its input alone: (N, |channels|, H, W) -> (N, 3, H, W)."""
        # docs/model.md#a5 norm_act_conv: IN(affine) -> LReLU -> conv1x1
        if isinstance(self.fusion, nn.Sequential):
            norm, _, conv = self.fusion
            feats = instance_norm(feats, norm.weight[channels], norm.bias[channels], norm.eps)
            feats = F.leaky_relu(feats, LRELU_SLOPE)
        else:  # docs/model.md#a5 conv
            conv = self.fusion
        return F.conv2d(feats, conv.weight[:, channels], conv.bias if with_bias else None)

    def decode(
        self,
        h: torch.Tensor,
        s: torch.Tensor,
        c: torch.Tensor | None = None,
        background: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """h (N, max_conv_dim, B, B), s (N, S), c (N, C, B, B) or None -> x (N, 3, H, W).

        ``background`` (N, 3, H, W), from :meth:`decode_background` of the same h (separate decoders only),
        skips the BG decoder: the output is that BG part plus the FG part (equal to the full decode within
        float tolerance).
        """
        if self.style_content and c is None:
            raise ValueError("this generator has style_content on: decode needs the content c (N, C, B, B)")
        if not self.style_content and c is not None:
            raise ValueError("this generator has style_content off (StarGAN v2): call it without content c")
        if background is not None:
            if not self.separate_decoders:
                raise ValueError("background= needs separate_decoders; the unified decoder has no BG part")
            fg = c
            for block in self.fg_decoder:
                fg = block(fg, s)  # -> (N, 64, 128, 128)
            return background + self._fusion_part(fg, slice(self.bg_out_dim, None), with_bias=False)
        if self.separate_decoders:
            bg = h[:, : self.bg_dim]  # BG_G(x) (N, 448, 16, 16); FG_G(x) is discarded
            for block in self.bg_decoder:
                bg = block(bg)  # -> (N, 448, 128, 128)
            fg = c
            for block in self.fg_decoder:
                fg = block(fg, s)  # -> (N, 64, 128, 128)
            return self.fusion(torch.cat([bg, fg], dim=1))  # (N, 512, 128, 128) -> (N, 3, 128, 128)
        if c is not None:
            # docs/model.md#a7: [BG 448 | c 64] (replace) or [h 512 | c 64] (concat), both at (B, B).
            h = torch.cat([h if self.concat else h[:, : self.bg_dim], c], dim=1)
        for block in self.decoder:
            h = block(h, s)  # -> (N, stem_dim, H, W)
        return self.to_rgb(h)

    def forward(self, x: torch.Tensor, s: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, 3, H, W), s (N, S), c (N, C, B, B) iff style_content -> x_fake (N, 3, H, W), no tanh."""
        return self.decode(self.encode(x), s, c)
