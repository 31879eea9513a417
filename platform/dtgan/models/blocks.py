"""Building blocks of G, M, E and D: StarGAN v2's residual blocks, DT-GAN's IN and noise variants (docs/model.md#building-blocks, docs/model.md#a9, docs/model.md#a19)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2  # StarGAN v2's LeakyReLU slope everywhere except the mapping MLP (plain ReLU)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def instance_norm(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float = 1e-5
) -> torch.Tensor:
    """Instance norm of x (N, C, H, W) with an optional per-channel affine, in the kernel that suits x's layout.

    The same function as ``F.instance_norm`` (each (n, c) plane normalised over H x W with its biased variance),
    computed as a group norm with one channel per group on contiguous (NCHW) input: one kernel each way on the
    CPU, where instance norm reshapes to a batch norm. On channels_last input the result is made channels_last
    again (instance norm returns NCHW): the LeakyReLU that follows then runs, forward and backward, in one
    layout instead of a slow mixed-stride path.
    """
    if x.is_contiguous():
        return F.group_norm(x, x.size(1), weight, bias, eps)
    out = F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    return (
        out.contiguous(memory_format=torch.channels_last)
        if x.is_contiguous(memory_format=torch.channels_last)
        else out
    )


def adaptive_instance_norm(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """``scale * IN(x) + shift`` with per-sample (N, C) ``scale`` and ``shift``, in one kernel on NCHW input.

    Folding the N samples into the channels, (N, C, H, W) -> (1, N*C, H, W), turns the per-sample affine into a
    group norm's per-channel one: one normalise-and-affine pass forward and one backward instead of three.
    """
    n, c, h, w = x.shape
    dtype = torch.promote_types(
        x.dtype, scale.dtype
    )  # as the formula's products would (bf16 codes under autocast)
    x, scale, shift = x.to(dtype), scale.to(dtype), shift.to(dtype)
    if x.is_contiguous():
        folded = F.group_norm(x.view(1, n * c, h, w), n * c, scale.reshape(-1), shift.reshape(-1), eps)
        return folded.view(n, c, h, w)
    return scale[:, :, None, None] * instance_norm(x, None, None, eps) + shift[:, :, None, None]


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same parameters and state_dict) computed by :func:`instance_norm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or x.dim() != 4:
            return super().forward(x)
        return instance_norm(x, self.weight, self.bias, self.eps)


def _shortcut(dim_in: int, dim_out: int) -> nn.Module:
    """A learned 1x1 shortcut without bias when the width changes, the identity otherwise."""
    return nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()


class ResBlk(nn.Module):
    """StarGAN v2's pre-activation residual block, optionally IN-normalised and 2x average-pool downsampling.

    Residual: [IN] -> LReLU -> conv3x3 (in->in) -> [avgpool] -> [IN] -> LReLU -> conv3x3 (in->out).
    Shortcut: [1x1 conv if in != out] -> [avgpool]. Output (res + sc) / sqrt(2).
    """

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1 = InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.norm2 = InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.shortcut = _shortcut(dim_in, dim_out)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.leaky_relu(self.norm1(x), LRELU_SLOPE))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv2(F.leaky_relu(self.norm2(x), LRELU_SLOPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sc = self.shortcut(x)
        if self.downsample:
            sc = F.avg_pool2d(sc, 2)
        return (sc + self._residual(x)) * _INV_SQRT2


class AdaIN(nn.Module):
    """Adaptive instance norm: (1 + gamma(s)) * IN(x) + beta(s); IN without affine, Linear(style -> 2C)."""

    def __init__(self, style_dim: int, num_features: int) -> None:
        super().__init__()
        self.norm = InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s).chunk(2, dim=1)  # (N, C) each
        return adaptive_instance_norm(x, 1 + gamma, beta, self.norm.eps)


class AdainResBlk(nn.Module):
    """StarGAN v2's decoder block (w_hpf = 0): AdaIN pre-activation, optional nearest x2 upsampling.

    Residual: AdaIN -> LReLU -> [up] -> conv3x3 (in->out) -> AdaIN -> LReLU -> conv3x3 (out->out).
    Shortcut: [up] -> [1x1 conv if in != out]. Output (res + sc) / sqrt(2).
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.shortcut = _shortcut(dim_in, dim_out)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        res = F.leaky_relu(self.norm1(x, s), LRELU_SLOPE)
        if self.upsample:
            res = F.interpolate(res, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        res = self.conv2(F.leaky_relu(self.norm2(self.conv1(res), s), LRELU_SLOPE))
        return (self.shortcut(x) + res) * _INV_SQRT2


class INResBlk(nn.Module):
    """docs/model.md#a19: AdainResBlk with IN(affine) in place of AdaIN; the blocks of DT-GAN's BG decoder."""

    def __init__(self, dim_in: int, dim_out: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1 = InstanceNorm2d(dim_in, affine=True)
        self.norm2 = InstanceNorm2d(dim_out, affine=True)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.shortcut = _shortcut(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = F.leaky_relu(self.norm1(x), LRELU_SLOPE)
        if self.upsample:
            res = F.interpolate(res, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        res = self.conv2(F.leaky_relu(self.norm2(self.conv1(res)), LRELU_SLOPE))
        return (self.shortcut(x) + res) * _INV_SQRT2


class NoiseInjection(nn.Module):
    """StyleGAN noise: x + strength_c * n with n ~ N(0, 1) of shape (N, 1, H, W), fresh on every call.

    The noise is drawn in eval mode too: DT-GAN's content stays non-deterministic for a fixed z (docs/model.md#mapping-network).
    """

    def __init__(self, channels: int, strength_init: float) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.full((1, channels, 1, 1), float(strength_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        noise = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
        return x + self.strength * noise


class NoisyUpResBlk(nn.Module):
    """docs/model.md#a9: the upsampling block of M's content branch, conv before IN so a 1x1 input never meets IN.

    Residual: up -> conv3x3 (in->out) -> [noise] -> IN(affine) -> LReLU -> conv3x3 -> [noise] -> IN -> LReLU.
    Shortcut: up -> [1x1 conv if in != out] (no noise). Output (res + sc) / sqrt(2).
    ``noise_init=None`` builds the block without noise layers (ladder steps before g).
    """

    def __init__(self, dim_in: int, dim_out: int, noise_init: float | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.noise1 = NoiseInjection(dim_out, noise_init) if noise_init is not None else nn.Identity()
        self.noise2 = NoiseInjection(dim_out, noise_init) if noise_init is not None else nn.Identity()
        self.norm1 = InstanceNorm2d(dim_out, affine=True)
        self.norm2 = InstanceNorm2d(dim_out, affine=True)
        self.shortcut = _shortcut(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        res = F.leaky_relu(self.norm1(self.noise1(self.conv1(x))), LRELU_SLOPE)
        res = F.leaky_relu(self.norm2(self.noise2(self.conv2(res))), LRELU_SLOPE)
        return (self.shortcut(x) + res) * _INV_SQRT2


def select_domain(stacked: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Take row ``y[i]`` of each sample from an all-domain stack (N, K, ...) -> (N, ...), as StarGAN does."""
    return stacked[torch.arange(stacked.size(0), device=stacked.device), y]


def zero_normal(c: torch.Tensor, y: torch.Tensor, normal_index: int = 0) -> torch.Tensor:
    """The anchor (step f): content exactly zero where ``y == normal_index``; other rows keep their grad."""
    keep = (y != normal_index).view(-1, *([1] * (c.dim() - 1)))
    return torch.where(keep, c, torch.zeros((), dtype=c.dtype, device=c.device))
