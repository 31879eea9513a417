"""Metrics no paper reports, from the benchmark's ground truth: is the background kept and the defect local?

- identity: normal -> normal (the anchor) should return the input: PSNR and SSIM of output vs input;
- removal: defect -> normal should give the stored clean background: PSNR vs it;
- transfer locality: normal -> defect should change few pixels: the share of the absolute change inside the
  most-changed ``top_fraction`` of pixels, and the PSNR of the rest (the background) vs the input;
- input dependence: under one code (s, c) per target domain, do outputs still differ from source to source as
  much as the sources do? (A generator that paints from the style code alone scores ~0.)
- self-reconstruction: G(x, E(x, y)) vs x.

They work on any ``translate(sources uint8 (N,3,H,W), y_trg (N,) long) -> uint8 (N,3,H,W)`` (called once per
metric; it batches itself), so an identity or a noise "generator" calibrates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dtgan import keys
from dtgan.data.vocab import NORMAL_INDEX

Translate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

PIXEL_MAX = 255.0
# PSNR of identical images is infinite; JSON and MLflow need a number. 100 dB = an MSE of 6.5e-6 grey levels².
PSNR_CAP_DB = 100.0
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * PIXEL_MAX) ** 2
_SSIM_C2 = (0.03 * PIXEL_MAX) ** 2


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    floor = PIXEL_MAX**2 / 10 ** (PSNR_CAP_DB / 10)
    return 10 * torch.log10(PIXEL_MAX**2 / mse.clamp_min(floor))


def psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB (N,) of uint8 images (N, C, H, W), over the pixels where ``mask`` (N, 1, H, W) is
    True (all pixels without a mask); capped at PSNR_CAP_DB."""
    err = (x.float() - y.float()) ** 2
    if mask is None:
        return _psnr_from_mse(err.flatten(1).mean(1))
    weight = mask.float().expand_as(err)
    mse = (err * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1)
    return _psnr_from_mse(mse)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (N,) of uint8 images (N, C, H, W) (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
    valid filtering, averaged over channels and positions)."""
    n, c, h, w = x.shape
    size = min(_SSIM_WINDOW, h, w)
    window = _gaussian_window(size, _SSIM_SIGMA).to(x.device)
    a = x.float().reshape(n * c, 1, h, w)
    b = y.float().reshape(n * c, 1, h, w)
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a**2
    var_b = F.conv2d(b * b, window) - mu_b**2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + _SSIM_C1) * (var_a + var_b + _SSIM_C2)
    )
    return ssim_map.reshape(n, -1).mean(1)


def identity_metrics(translate: Translate, x_normal: torch.Tensor) -> dict[str, float]:
    """normal -> normal: mean PSNR and SSIM of output vs input."""
    y_trg = torch.full((len(x_normal),), NORMAL_INDEX, dtype=torch.long)
    x_out = translate(x_normal, y_trg)
    return {
        keys.EVAL_IDENTITY_PSNR: float(psnr(x_out, x_normal).mean()),
        keys.EVAL_IDENTITY_SSIM: float(ssim(x_out, x_normal).mean()),
    }


def removal_metrics(translate: Translate, x_defect: torch.Tensor, x_clean: torch.Tensor) -> dict[str, float]:
    """defect -> normal: mean PSNR of the output vs the stored clean background."""
    if x_clean.shape[1] != x_defect.shape[1]:
        x_clean = x_clean.expand(-1, x_defect.shape[1], -1, -1)
    y_trg = torch.full((len(x_defect),), NORMAL_INDEX, dtype=torch.long)
    x_out = translate(x_defect, y_trg)
    return {
        keys.EVAL_REMOVAL_PSNR: float(psnr(x_out, x_clean).mean()),
        keys.EVAL_REMOVAL_PSNR_DO_NOTHING: float(psnr(x_defect, x_clean).mean()),
    }


def _spread_over_sources(images: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of the standard deviation across the N images (N, C, H, W) -> scalar."""
    return images.float().std(dim=0).mean()


def input_dependence(
    translate_shared: Translate, x_sources: torch.Tensor, domains: list[int]
) -> dict[str, float]:
    """The spread of outputs over sources under one shared code per target domain, over the sources' own spread.

    ``translate_shared(sources, y_trg)`` must give every source the same code (s, c) (one draw, expanded).
    Averaged over ``domains``; needs at least two sources.
    """
    if len(x_sources) < 2:
        raise ValueError("input dependence needs at least two sources")
    own = _spread_over_sources(x_sources).clamp_min(1e-6)
    ratios = []
    for domain in domains:
        y_trg = torch.full((len(x_sources),), domain, dtype=torch.long)
        ratios.append(float(_spread_over_sources(translate_shared(x_sources, y_trg)) / own))
    return {keys.EVAL_INPUT_DEPENDENCE: sum(ratios) / len(ratios)}


def self_reconstruction_metrics(
    reconstruct: Callable[[torch.Tensor], torch.Tensor], x_normal: torch.Tensor
) -> dict[str, float]:
    """G(x, E(x, normal)) vs x: mean PSNR and SSIM."""
    x_out = reconstruct(x_normal)
    return {
        keys.EVAL_SELF_RECON_PSNR: float(psnr(x_out, x_normal).mean()),
        keys.EVAL_SELF_RECON_SSIM: float(ssim(x_out, x_normal).mean()),
    }


def change_locality(
    x_src: torch.Tensor, x_out: torch.Tensor, top_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the share of sum |x_out - x_src| inside the most-changed ``top_fraction`` of pixels (1 when
    nothing changed), and the PSNR of the other pixels vs the source. Both (N,)."""
    n, _, h, w = x_src.shape
    change = (x_out.float() - x_src.float()).abs().mean(1).flatten(1)  # (N, H*W)
    k = max(1, math.ceil(top_fraction * h * w))
    top_values, top_index = change.topk(k, dim=1)
    total = change.sum(1)
    share = torch.where(total > 0, top_values.sum(1) / total.clamp_min(1e-12), torch.ones_like(total))
    background = torch.ones_like(change, dtype=torch.bool).scatter_(1, top_index, False).view(n, 1, h, w)
    return share, psnr(x_out, x_src, mask=background)


def transfer_locality_metrics(
    translate: Translate, x_normal: torch.Tensor, y_trg: torch.Tensor, top_fraction: float = 0.1
) -> dict[str, float]:
    """normal -> defect ``y_trg``: mean locality share and background PSNR (see :func:`change_locality`)."""
    x_out = translate(x_normal, y_trg)
    share, bg_psnr = change_locality(x_normal, x_out, top_fraction)
    return {
        keys.EVAL_TRANSFER_LOCALITY: float(share.mean()),
        keys.EVAL_TRANSFER_BG_PSNR: float(bg_psnr.mean()),
    }


def transfer_and_paint_locality(
    translate: Translate,
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    x_normal: torch.Tensor,
    y_trg: torch.Tensor,
    top_fraction: float = 0.1,
) -> dict[str, float]:
    """normal -> defect ``y_trg``, its change measured twice: against the source (``transfer_*``) and against the
    generator's own reconstruction ``reconstruct(x)`` = G(x, x's own style) (``paint_*``): where the defect was
    painted, without the pixels the generator fails to reproduce anyway. One translation serves both."""
    x_out = translate(x_normal, y_trg)
    share, bg_psnr = change_locality(x_normal, x_out, top_fraction)
    paint_share, paint_bg = change_locality(reconstruct(x_normal), x_out, top_fraction)
    return {
        keys.EVAL_TRANSFER_LOCALITY: float(share.mean()),
        keys.EVAL_TRANSFER_BG_PSNR: float(bg_psnr.mean()),
        keys.EVAL_PAINT_LOCALITY: float(paint_share.mean()),
        keys.EVAL_PAINT_BG_PSNR: float(paint_bg.mean()),
    }
