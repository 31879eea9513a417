"""Gradient reversal layer (Ganin & Lempitsky, 2015) and the real-vs-synthetic domain head (Appendix B)."""

from __future__ import annotations

import torch
from torch import nn

HIDDEN_INIT_STD = 0.01  # Appendix B: hidden layers ~ N(0, 0.01)
OUTPUT_INIT_STD = 0.05  # Appendix B: output layer ~ N(0, 0.05); all biases 0


class _GradientReversal(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the incoming gradient by -coefficient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coefficient * grad_output, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; its gradient reversed and scaled by ``coefficient``."""
    return _GradientReversal.apply(x, coefficient)


class GradientReversalLayer(nn.Module):
    """Module form of :func:`grad_reverse` with a fixed coefficient."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = float(coefficient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"


class DomainHead(nn.Module):
    """GRL + MLP on the pooled features -> one real(0)/synthetic(1) logit per image.

    ``num_layers`` Linear layers: 2 for ResNet-50 (Fig. 8), 3 for EfficientNet-b4 (Fig. 9), ReLU between.
    """

    def __init__(self, in_features: int, hidden_dim: int, num_layers: int, grl_coefficient: float) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be >= 2, got {num_layers}")
        self.grl = GradientReversalLayer(grl_coefficient)
        dims = [in_features] + [hidden_dim] * (num_layers - 1)
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], 1))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        linears = [m for m in self.mlp if isinstance(m, nn.Linear)]
        for i, linear in enumerate(linears):
            std = OUTPUT_INIT_STD if i == len(linears) - 1 else HIDDEN_INIT_STD
            nn.init.normal_(linear.weight, 0.0, std)
            nn.init.zeros_(linear.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """pooled (N, F) -> domain logits (N,)."""
        return self.mlp(self.grl(pooled)).squeeze(1)
