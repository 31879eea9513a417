"""Eq. 1: the non-saturating BCE adversarial loss and the zero-centred R1 penalty on real images (docs/model.md#optimisation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def adversarial_loss(logits: torch.Tensor, target: float) -> torch.Tensor:
    """BCE-with-logits of D's selected real/fake logits (N,) against a constant target (1 real, 0 fake)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def r1_penalty(real_logits: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """0.5 * batch mean of the per-sample squared norm of d(sum of real logits)/d(x_real).

    ``x_real`` must require grad and ``real_logits`` (N,) must be computed from it. The graph is kept
    (create_graph) so that the penalty itself is differentiated w.r.t. D's parameters.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), x_real, create_graph=True)  # (N, 3, H, W)
    return 0.5 * grad.pow(2).flatten(1).sum(dim=1).mean()
