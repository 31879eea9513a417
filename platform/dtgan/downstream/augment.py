"""Traditional augmentation of classifier batches: horizontal flip, translation jitter, lighting."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dtgan.config.downstream import DownstreamConfig


def traditional_augment(x01: torch.Tensor, cfg: DownstreamConfig, generator: torch.Generator) -> torch.Tensor:
    """x01 (N, C, H, W) in [0, 1] -> the same shape, each image flipped, shifted and relit at random.

    Random draws come from the CPU ``generator`` (seeded per job), so a run is reproducible on any device.
    """
    n = x01.shape[0]
    device = x01.device

    def uniform(low: float, high: float) -> torch.Tensor:  # (N,) on the batch's device
        return (low + (high - low) * torch.rand(n, generator=generator)).to(device)

    flip = (torch.rand(n, generator=generator) < cfg.aug_hflip_prob).to(device)
    x = torch.where(flip[:, None, None, None], x01.flip(-1), x01)
    if cfg.aug_jitter_fraction > 0:
        # Translation by up to jitter_fraction of the side; grid units span 2 per side, reflection at borders.
        shift = 2.0 * cfg.aug_jitter_fraction
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = uniform(-shift, shift)
        theta[:, 1, 2] = uniform(-shift, shift)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    brightness = uniform(1 - cfg.aug_brightness, 1 + cfg.aug_brightness)[:, None, None, None]
    contrast = uniform(1 - cfg.aug_contrast, 1 + cfg.aug_contrast)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * brightness
    return x.clamp(0.0, 1.0)
