"""Eq. 2, 4, 5: style(-content) reconstruction, cycle consistency and content consistency (all element-mean L1)."""

from __future__ import annotations

import torch


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.abs(a - b))


def style_reconstruction_loss(s_pred: torch.Tensor, s_trg: torch.Tensor) -> torch.Tensor:
    """Eq. 2 style part: mean |E^s_y~(G_11) - s~_1|, both (N, S)."""
    return _l1(s_pred, s_trg)


def content_reconstruction_loss(c_pred: torch.Tensor, c_trg: torch.Tensor) -> torch.Tensor:
    """Eq. 2 content part: mean |E^c_y~(G_11) - c~_1|, both (N, C, B, B); 0 = 0 for an anchored Normal target."""
    return _l1(c_pred, c_trg)


def cycle_loss(x_rec: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """Eq. 4: mean |x - G(G_11, s^, c^)| with (s^, c^) = E(x, y) under the source domain; (N, 3, H, W)."""
    return _l1(x_rec, x_real)


def self_reconstruction_loss(x_self: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """Not in the paper (CPU presets only): mean |x - G(x, s^, c^)|, x translated with its own codes E(x, y)."""
    return _l1(x_self, x_real)


def content_consistency_loss(
    fg_real: torch.Tensor, c_org: torch.Tensor, fg_fake: torch.Tensor, c_trg: torch.Tensor
) -> torch.Tensor:
    """Eq. 5: mean |FG_G(x) - c^| + mean |FG_G(G_11) - c~_1| (all (N, C, B, B); no stop-gradient, docs/model.md#a16).

    With the anchor on and a Normal source, c^ = 0 and the first term is the Normal-content penalty.
    """
    return _l1(fg_real, c_org) + _l1(fg_fake, c_trg)
