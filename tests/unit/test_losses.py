"""The loss terms of Eq. 1-7 as functions: values on hand-computable inputs, R1 against the analytic gradient."""

import itertools

import pytest
import torch

from dtgan.losses import (
    adversarial_loss,
    bg_classification_loss,
    content_consistency_loss,
    cycle_loss,
    diversity_loss_mixed,
    diversity_loss_pair,
    fg_classification_loss,
    r1_penalty,
    style_reconstruction_loss,
)


def test_r1_matches_the_analytic_gradient_of_a_quadratic():
    # D(x) = sum(w * x^2) per sample -> dD/dx = 2 w x; R1 = 0.5 * mean_n sum (2 w x_n)^2
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (w * x.pow(2)).flatten(1).sum(dim=1)  # (N,)
    penalty = r1_penalty(logits, x)
    expected = 0.5 * (2 * w * x).pow(2).flatten(1).sum(dim=1).mean()
    torch.testing.assert_close(penalty, expected)
    # create_graph: the penalty is differentiable w.r.t. D's parameters: d/dw = mean_n 4 w x^2
    (grad_w,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad_w, (4 * w * x.pow(2)).mean(dim=0))


def test_r1_of_a_linear_discriminator_is_half_the_squared_weight_norm():
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x = torch.zeros(7, 1, 2, 2, requires_grad=True)
    logits = (x[:, 0] * w).flatten(1).sum(1)
    assert r1_penalty(logits, x).item() == pytest.approx(0.5 * (1 + 4 + 0.25 + 9))


def test_adversarial_loss_is_bce_with_a_constant_target():
    logits = torch.tensor([0.0, 2.0, -1.0])
    expected_real = torch.nn.functional.softplus(-logits).mean()
    expected_fake = torch.nn.functional.softplus(logits).mean()
    torch.testing.assert_close(adversarial_loss(logits, 1.0), expected_real)
    torch.testing.assert_close(adversarial_loss(logits, 0.0), expected_fake)


def test_diversity_mixed_sums_the_six_pairwise_l1_distances():
    mixes = [torch.full((2, 3, 4, 4), v) for v in (0.0, 1.0, 3.0, 7.0)]
    pairwise = [abs(a - b) for a, b in itertools.combinations((0.0, 1.0, 3.0, 7.0), 2)]
    assert diversity_loss_mixed(*mixes, reduction="sum").item() == pytest.approx(sum(pairwise))
    assert diversity_loss_mixed(*mixes, reduction="mean").item() == pytest.approx(sum(pairwise) / 6)


def test_diversity_of_identical_mixes_is_zero_and_pair_is_mean_abs():
    x = torch.randn(2, 3, 4, 4)
    assert diversity_loss_mixed(x, x, x, x).item() == 0.0
    assert diversity_loss_pair(x, x + 0.5).item() == pytest.approx(0.5)


def test_reconstruction_terms_are_element_mean_l1():
    a, b = torch.zeros(2, 8), torch.full((2, 8), 2.0)
    assert style_reconstruction_loss(a, b).item() == pytest.approx(2.0)
    assert cycle_loss(torch.ones(1, 3, 2, 2), -torch.ones(1, 3, 2, 2)).item() == pytest.approx(2.0)
    c = torch.ones(2, 4, 2, 2)
    # Eq. 5 with an anchored (zero) source content: the first term is ||FG_G(x)||_1 (element mean)
    assert content_consistency_loss(c, torch.zeros_like(c), c, c).item() == pytest.approx(1.0)


def test_classification_losses_are_cross_entropy():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    labels = torch.tensor([0, 1])
    assert fg_classification_loss(logits, labels).item() < 1e-3
    assert bg_classification_loss(logits, torch.tensor([2, 2])).item() > 9.0
