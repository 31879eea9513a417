"""Small labelled image sets for the evaluation tests: smooth gray backgrounds with bright lines or dark spots."""

from __future__ import annotations

import torch
import torch.nn.functional as F

KINDS = ("normal", "scratch", "spot")


def backgrounds(n: int, seed: int, side: int = 32) -> torch.Tensor:
    """(n, 1, side, side) float in [0, 255]: low-frequency noise around mid-gray."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 1, 4, 4, generator=g)
    smooth = F.interpolate(coarse, size=(side, side), mode="bicubic", align_corners=False)
    fine = torch.randn(n, 1, side, side, generator=g)
    return (128 + 25 * smooth + 6 * fine).clamp(0, 255)


def paint(x: torch.Tensor, kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint one defect per image; returns the painted images and the (n, 1, H, W) bool masks."""
    n, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(h).view(h, 1).float()
    cols = torch.arange(w).view(1, w).float()
    out, masks = x.clone(), torch.zeros(n, 1, h, w, dtype=torch.bool)
    for i in range(n):
        if kind == "scratch":
            slope = float(torch.empty(1).uniform_(-1, 1, generator=g))
            offset = float(torch.empty(1).uniform_(0.25 * h, 0.75 * h, generator=g))
            mask = (rows - (slope * (cols - w / 2) + offset)).abs() < 1.0
            out[i, 0][mask] = 235.0
        elif kind == "spot":
            cy, cx = (float(v) for v in torch.empty(2).uniform_(0.3 * h, 0.7 * h, generator=g))
            radius = float(torch.empty(1).uniform_(2.5, 4.5, generator=g))
            mask = ((rows - cy) ** 2 + (cols - cx) ** 2) < radius**2
            out[i, 0][mask] = 30.0
        else:
            mask = torch.zeros(h, w, dtype=torch.bool)
        masks[i, 0] = mask
    return out, masks


def to_rgb_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)


def labelled_set(n_per_kind: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (3 * n_per_kind, 3, 32, 32) images of the three kinds and their labels 0, 1, 2."""
    images, labels = [], []
    for label, kind in enumerate(KINDS):
        painted, _ = paint(backgrounds(n_per_kind, seed + 101 * label), kind, seed + label)
        images.append(to_rgb_uint8(painted))
        labels.append(torch.full((n_per_kind,), label, dtype=torch.long))
    return torch.cat(images), torch.cat(labels)
