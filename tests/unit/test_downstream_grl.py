"""Gradient reversal layer and the real-vs-synthetic domain head (Appendix B)."""

import pytest
import torch
from torch import nn

from dtgan.downstream.grl import DomainHead, GradientReversalLayer, grad_reverse


@pytest.mark.parametrize("coefficient", [1.0, 0.3, 2.5])
def test_gradient_reversal_flips_and_scales_the_gradient(coefficient):
    x = torch.randn(4, 5, requires_grad=True)
    weights = torch.randn(4, 5)
    y = grad_reverse(x, coefficient)
    assert torch.equal(y, x)  # identity forward
    (y * weights).sum().backward()
    torch.testing.assert_close(x.grad, -coefficient * weights)


def test_gradient_reversal_layer_reverses_only_what_flows_through_it():
    layer = GradientReversalLayer(0.5)
    x = torch.ones(3, requires_grad=True)
    (layer(x).sum() + 2 * x.sum()).backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 2.0 - 0.5))


@pytest.mark.parametrize("num_layers", [2, 3])
def test_domain_head_has_the_paper_depth_and_initialisation(num_layers):
    torch.manual_seed(0)
    head = DomainHead(in_features=2048, hidden_dim=1024, num_layers=num_layers, grl_coefficient=1.0)
    linears = [m for m in head.mlp if isinstance(m, nn.Linear)]
    assert len(linears) == num_layers
    assert linears[-1].out_features == 1 and linears[0].in_features == 2048
    for linear in linears[:-1]:
        assert abs(linear.weight.std().item() - 0.01) < 0.001
    assert abs(linears[-1].weight.std().item() - 0.05) < 0.01
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)
    assert head(torch.randn(7, 2048)).shape == (7,)


def test_domain_head_pushes_features_to_confuse_real_and_synthetic():
    """The pooled features receive the reversed gradient of the domain loss."""
    head = DomainHead(8, 16, 2, grl_coefficient=1.0)
    pooled = torch.randn(6, 8, requires_grad=True)
    target = torch.tensor([0.0, 1, 0, 1, 0, 1])
    nn.functional.binary_cross_entropy_with_logits(head(pooled), target).backward()
    reference = pooled.detach().clone().requires_grad_(True)
    nn.functional.binary_cross_entropy_with_logits(head.mlp(reference).squeeze(1), target).backward()
    torch.testing.assert_close(pooled.grad, -reference.grad)
