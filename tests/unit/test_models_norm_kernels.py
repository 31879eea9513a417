"""The layout-aware instance norms equal the textbook formulas (values and gradients) in both memory layouts, and
G and M with them equal G and M with torch's InstanceNorm2d (same state_dict)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dtgan.config import load_config
from dtgan.models import build_nets
from dtgan.models.blocks import InstanceNorm2d, adaptive_instance_norm, instance_norm

TOL = {"rtol": 1e-4, "atol": 1e-5}
CL = torch.channels_last


def _reference_instance_norm(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
    out = (x - mean) / torch.sqrt(var + eps)
    return out if weight is None else out * weight[:, None, None] + bias[:, None, None]


def _inputs(layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 6, 7, generator=g) * 3 + 1
    x = x.contiguous(memory_format=layout).requires_grad_()
    w = (torch.randn(5, generator=g) + 1).requires_grad_()
    b = torch.randn(5, generator=g).requires_grad_()
    return x, w, b


def _value_and_grads(fn, x, *params):
    out = F.leaky_relu(fn(x, *params), 0.2)  # what follows every norm in the networks
    upstream = torch.linspace(-1, 1, out.numel()).view_as(out)
    grads = torch.autograd.grad((out * upstream).sum(), [x, *params])
    return out, grads


@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_equals_the_formula_in_both_layouts(layout, affine):
    x, w, b = _inputs(layout)
    params = (w, b) if affine else ()
    ours = _value_and_grads(lambda x, *p: instance_norm(x, *(p or (None, None))), x, *params)
    ref = _value_and_grads(lambda x, *p: _reference_instance_norm(x, *(p or (None, None))), x, *params)
    torch.testing.assert_close(ours[0], ref[0], **TOL)
    for a, r in zip(ours[1], ref[1]):
        torch.testing.assert_close(a, r, **TOL)
    # the output keeps the input's layout, so the activation after it runs in one layout
    assert ours[0].is_contiguous(memory_format=layout)


@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_adaptive_instance_norm_equals_scale_times_norm_plus_shift(layout):
    x, _, _ = _inputs(layout, seed=1)
    g = torch.Generator().manual_seed(2)
    scale = (torch.randn(3, 5, generator=g) + 1).requires_grad_()
    shift = torch.randn(3, 5, generator=g).requires_grad_()
    ours = _value_and_grads(adaptive_instance_norm, x, scale, shift)
    ref = _value_and_grads(
        lambda x, s, t: s[:, :, None, None] * _reference_instance_norm(x, None, None) + t[:, :, None, None],
        x,
        scale,
        shift,
    )
    torch.testing.assert_close(ours[0], ref[0], **TOL)
    for a, r in zip(ours[1], ref[1]):
        torch.testing.assert_close(a, r, **TOL)


def _with_torch_norms(module: nn.Module) -> nn.Module:
    """The same network with every InstanceNorm2d replaced by torch's own (same parameters)."""
    for name, child in module.named_children():
        if isinstance(child, InstanceNorm2d):
            plain = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=child.affine)
            plain.load_state_dict(child.state_dict())
            setattr(module, name, plain)
        else:
            _with_torch_norms(child)
    return module


@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_generator_and_mapping_equal_their_torch_instance_norm_versions(layout):
    import copy

    config = load_config("tiny", ["model.ablation=g"])
    torch.manual_seed(0)
    nets = build_nets(config.model, num_domains=3, num_products=2)
    G, M = nets.generator, nets.mapping_network
    G_ref, M_ref = _with_torch_norms(copy.deepcopy(G)), _with_torch_norms(copy.deepcopy(M))
    assert G.state_dict().keys() == G_ref.state_dict().keys()
    # float64: ten stacked norms of a freshly initialised G amplify float32 round-off in the gradients to ~1 %
    # (either implementation against float64), which would hide a real difference
    G, M, G_ref, M_ref = (m.double().to(memory_format=layout) for m in (G, M, G_ref, M_ref))
    x = (torch.rand(4, 3, 32, 32, dtype=torch.float64) * 2 - 1).contiguous(memory_format=layout)
    z, y = torch.randn(4, config.model.latent_dim, dtype=torch.float64), torch.tensor([0, 1, 2, 1])

    def run(G, M):
        torch.manual_seed(1)  # the mapping network's noise
        s, c = M(z, y)
        out = G(x, s, c)
        loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
        return out, torch.autograd.grad(loss, [*G.parameters(), *M.parameters()])

    out, grads = run(G, M)
    out_ref, grads_ref = run(G_ref, M_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-9, atol=1e-10)
    for a, r in zip(grads, grads_ref):
        torch.testing.assert_close(a, r, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_the_networks_run_under_bf16_autocast_as_the_formula_does(layout):
    """Under autocast the style codes are bf16 (a Linear) while a norm's input may be fp32: AdaIN promotes
    as ``(1 + gamma) * IN(x) + beta`` does."""
    x, _, _ = _inputs(layout, seed=3)
    scale, shift = torch.rand(3, 5).bfloat16() + 0.5, torch.randn(3, 5).bfloat16()
    ours = adaptive_instance_norm(x, scale, shift)
    ref = (
        scale.float()[:, :, None, None] * _reference_instance_norm(x, None, None)
        + shift.float()[:, :, None, None]
    )
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, **TOL)
    config = load_config("tiny", ["model.ablation=g"])
    nets = build_nets(config.model, num_domains=3, num_products=2)
    G, M = nets.generator.to(memory_format=layout), nets.mapping_network.to(memory_format=layout)
    images = (torch.rand(4, 3, 32, 32) * 2 - 1).contiguous(memory_format=layout)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s, c = M(torch.randn(4, config.model.latent_dim), torch.tensor([0, 1, 2, 1]))
        h = G.encode(images)
        out = G.decode(h, s, c, background=G.decode_background(h.float()))  # an fp32 input meets bf16 codes
    out.float().sum().backward()
    assert torch.isfinite(out).all() and all(p.grad is not None for p in G.fg_decoder.parameters())
