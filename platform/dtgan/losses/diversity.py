"""Eq. 3: the diversity-sensitive loss, StarGAN v2's single pair and DT-GAN's 6 pairs of mixes (docs/model.md#a1, docs/model.md#a2)."""

from __future__ import annotations

import itertools
from typing import Literal

import torch


def diversity_loss_pair(x_fake: torch.Tensor, x_fake2: torch.Tensor) -> torch.Tensor:
    """StarGAN v2: mean |G(x, s1) - G(x, s2)|; the caller passes ``x_fake2`` detached. No ||z1 - z2|| term."""
    return torch.mean(torch.abs(x_fake - x_fake2))


def diversity_loss_mixed(
    x_11: torch.Tensor,
    x_12: torch.Tensor,
    x_21: torch.Tensor,
    x_22: torch.Tensor,
    reduction: Literal["sum", "mean"] = "sum",
) -> torch.Tensor:
    """All 6 pairwise element-mean L1 distances among G_11, G_12, G_21, G_22 (G_ij = G(x, s_i, c_j)).

    Detaching (docs/model.md#a2 ``ds_detach``) is the caller's choice: it passes detached mixes where wanted.
    ``reduction`` "sum" adds the 6 terms as Eq. 3 is written, "mean" divides by 6.
    """
    mixes = (x_11, x_12, x_21, x_22)
    pairs = [torch.mean(torch.abs(a - b)) for a, b in itertools.combinations(mixes, 2)]
    total = torch.stack(pairs).sum()
    return total / len(pairs) if reduction == "mean" else total
