"""Crop&Paste, the baseline every later defect generator compares against: a real defect cut out by its mask and
pasted, with a feathered edge, a random flip and a random place, onto a normal image of any product.

The alpha of a paste is 1 on the cut-out's mask and its blur (a Gaussian truncated at ``FEATHER_TRUNCATE_SIGMAS``
sigmas) around it: the defect keeps its own pixels, its edge fades into the target, and alpha is exactly 0 beyond
the radius, so every pixel outside the feathered mask keeps its value, bit for bit. Draws (which defect, flips, place) come from one seeded CPU generator per call: deterministic given a seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dtgan.config.crop_paste import CropPasteConfig
from dtgan.errors import DataError

log = logging.getLogger(__name__)

METHOD = "crop_paste"  # the method's name: tag value, downstream arm and report row
FEATHER_TRUNCATE_SIGMAS = 3.0  # the Gaussian of the feathered edge is cut at 3 sigma (alpha 0 beyond it)


@dataclass(frozen=True)
class DefectBank:
    """Real defects that can be cut out: uint8 images (M, C, S, S), bool masks (M, 1, S, S), defect y (M,),
    product p (M,). Every mask has at least one pixel (rows without are dropped by :func:`defect_bank`)."""

    images: torch.Tensor
    masks: torch.Tensor
    y: torch.Tensor
    p: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def rows_of(self, defect: int) -> torch.Tensor:
        return torch.nonzero(self.y == defect).flatten()


def defect_bank(
    images: torch.Tensor, masks: torch.Tensor | None, y: torch.Tensor, p: torch.Tensor, what: str
) -> DefectBank:
    """The rows of defect images whose mask marks any pixel; ``what`` names the set in errors and warnings."""
    if masks is None:
        raise DataError(
            f"{what}: no masks; Crop&Paste cuts each defect out by its mask (import masks with the data)"
        )
    if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    keep = (masks > 0).flatten(1).any(1)
    dropped = int((~keep).sum())
    if dropped:
        log.warning(
            "%s: %d of %d defect images have no mask or an empty one and cannot be pasted",
            what,
            dropped,
            len(keep),
        )
    return DefectBank(images[keep], masks[keep] > 0, y[keep], p[keep])


def _gaussian_kernel(sigma_px: float) -> torch.Tensor:
    """Normalised 1-D Gaussian (2r+1,) truncated at r = ceil(FEATHER_TRUNCATE_SIGMAS * sigma)."""
    radius = math.ceil(FEATHER_TRUNCATE_SIGMAS * sigma_px)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma_px**2))
    return kernel / kernel.sum()


def feather_radius_px(sigma_px: float) -> int:
    """How far beyond the mask the feathered alpha reaches (0 for a hard edge)."""
    return math.ceil(FEATHER_TRUNCATE_SIGMAS * sigma_px) if sigma_px > 0 else 0


def feathered_alpha(mask: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """bool (1, h, w) -> float (1, h, w) in [0, 1]: 1 on the mask, the blurred mask (zero-padded) around it, so
    the edge fades out over the feather band; exactly 0 beyond the radius."""
    alpha = mask.float()
    if sigma_px <= 0:
        return alpha
    kernel = _gaussian_kernel(sigma_px)
    r = (len(kernel) - 1) // 2
    x = alpha[None]  # (1, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0)), kernel.reshape(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r)), kernel.reshape(1, 1, -1, 1))
    return torch.maximum(alpha, x[0].clamp(0.0, 1.0))  # opaque on the mask: thin defects keep their contrast


def _cut_box(mask: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the mask's bounding box grown by ``margin``, clipped to the image."""
    rows = torch.nonzero(mask[0].any(1)).flatten()
    cols = torch.nonzero(mask[0].any(0)).flatten()
    side_h, side_w = mask.shape[-2:]
    top, bottom = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, side_h)
    left, right = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, side_w)
    return top, bottom, left, right


def crop_paste(
    targets: torch.Tensor,
    y_trg: torch.Tensor,
    bank: DefectBank,
    cfg: CropPasteConfig,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste one real defect of class ``y_trg[i]`` (from any product of the bank) onto each target.

    Args:
        targets: uint8 (N, C, S, S) normal images.
        y_trg: (N,) long defect index of each paste.
    Returns:
        (uint8 (N, C, S, S) pasted images, float (N, 1, S, S) alpha of each paste; 0 = the target's pixel).
    """
    if len(targets) != len(y_trg):
        raise ValueError(f"{len(targets)} targets but {len(y_trg)} defect labels")
    side = targets.shape[-1]
    if len(bank) and bank.images.shape[-1] != side:
        raise ValueError(
            f"defects are {bank.images.shape[-1]} px, targets {side} px; decode both at one size"
        )
    sigma = cfg.feather_sigma_fraction * side
    margin = feather_radius_px(sigma)
    generator = torch.Generator().manual_seed(seed)
    out = targets.clone()
    alphas = torch.zeros(len(targets), 1, *targets.shape[-2:])
    rows_by_defect = {int(d): bank.rows_of(int(d)) for d in torch.unique(y_trg)}
    for i in range(len(targets)):
        rows = rows_by_defect[int(y_trg[i])]
        if rows.numel() == 0:
            raise DataError(f"no masked real images of defect index {int(y_trg[i])} to paste")
        row = int(rows[torch.randint(len(rows), (1,), generator=generator)])
        flips = torch.rand(2, generator=generator)
        top, bottom, left, right = _cut_box(bank.masks[row], margin)
        cut = bank.images[row, :, top:bottom, left:right]
        mask = bank.masks[row, :, top:bottom, left:right]
        dims = [
            dim
            for dim, u, prob in ((-1, flips[0], cfg.hflip_prob), (-2, flips[1], cfg.vflip_prob))
            if u < prob
        ]
        if dims:
            cut, mask = cut.flip(dims), mask.flip(dims)
        alpha = feathered_alpha(mask, sigma)  # (1, h, w)
        h, w = alpha.shape[-2:]
        y0 = int(torch.randint(side - h + 1, (1,), generator=generator))
        x0 = int(torch.randint(side - w + 1, (1,), generator=generator))
        region = out[i, :, y0 : y0 + h, x0 : x0 + w].float()
        cut = cut.float().expand_as(region) if cut.shape[0] != region.shape[0] else cut.float()
        blended = (alpha * cut + (1 - alpha) * region).round().clamp(0, 255).to(torch.uint8)
        out[i, :, y0 : y0 + h, x0 : x0 + w] = torch.where(
            alpha > 0, blended, out[i, :, y0 : y0 + h, x0 : x0 + w]
        )
        alphas[i, :, y0 : y0 + h, x0 : x0 + w] = alpha
    return out, alphas


def crop_paste_translator(
    bank: DefectBank, cfg: CropPasteConfig, seed: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``translate(sources, y_trg)`` by Crop&Paste, for the disentanglement metrics that apply to it."""

    def translate(sources: torch.Tensor, y_trg: torch.Tensor) -> torch.Tensor:
        return crop_paste(sources, y_trg, bank, cfg, seed)[0]

    return translate
