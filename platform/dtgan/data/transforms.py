"""StarGAN v2's training transform on uint8 tensors, and the [-1, 1] <-> uint8 conversions."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torchvision.transforms.v2.functional as TF

from dtgan.config.data import DataConfig

# A transform maps a uint8 (C, H, W) image and a torch.Generator to float32 (3, H', W') in [-1, 1].
Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]
_CROP_ATTEMPTS = 10  # as torchvision's RandomResizedCrop


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 [0, 255] (rounded, clamped); any shape."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(u: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]; any shape."""
    return u.float() / 127.5 - 1.0


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _crop_box(
    height: int, width: int, cfg: DataConfig, generator: torch.Generator | None
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop of area fraction [crop_scale_min, 1] and log-uniform aspect ratio."""
    area = height * width
    log_ratio = (math.log(cfg.crop_ratio_min), math.log(cfg.crop_ratio_max))
    for _ in range(_CROP_ATTEMPTS):
        target_area = area * _uniform(generator, cfg.crop_scale_min, 1.0)
        ratio = math.exp(_uniform(generator, *log_ratio))
        w = round(math.sqrt(target_area * ratio))
        h = round(math.sqrt(target_area / ratio))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    return 0, 0, height, width  # fallback: the whole image (ratios here are ~1, so this is rare)


def stargan_transform(data_cfg: DataConfig, img_size: int) -> Transform:
    """The training transform (docs/model.md#data-pipeline, docs/model.md#a12): with probability ``random_resized_crop_prob`` a random-resized
    crop, then resize to ``img_size``, random horizontal flip, and [-1, 1]; gray is replicated to 3 channels.

    Randomness comes only from the ``generator`` argument, so a sample's augmentation is a function of its
    seed (exact resume, independent of the number of loader workers).
    """

    def transform(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # (1, H, W): channels are identical (gray replicated, docs/model.md#a20), so work on one
        gray = image[:1]
        if torch.rand((), generator=generator).item() < data_cfg.random_resized_crop_prob:
            top, left, h, w = _crop_box(gray.shape[-2], gray.shape[-1], data_cfg, generator)
            gray = TF.resized_crop(gray, top, left, h, w, [img_size, img_size], antialias=True)
        elif gray.shape[-2:] != (img_size, img_size):
            gray = TF.resize(gray, [img_size, img_size], antialias=True)
        if data_cfg.hflip and torch.rand((), generator=generator).item() < 0.5:
            gray = TF.horizontal_flip(gray)
        return from_uint8(gray).expand(3, -1, -1).contiguous()  # (3, img_size, img_size)

    return transform


def plain_transform(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """No augmentation: uint8 (3, H, W) -> float32 [-1, 1]."""
    return from_uint8(image).contiguous()
