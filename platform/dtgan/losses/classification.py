"""Eq. 6-7: FG (defect) and BG (product) classification cross-entropies on D's classifier heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fg_classification_loss(fg_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE over the K FG domains; ``fg_logits`` (N, K), ``y`` (N,) defect indices."""
    return F.cross_entropy(fg_logits, y)


def bg_classification_loss(bg_logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """CE over the P products; ``bg_logits`` (N, P), ``p`` (N,) product indices."""
    return F.cross_entropy(bg_logits, p)
