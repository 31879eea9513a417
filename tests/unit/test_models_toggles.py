"""The ablation toggles and ambiguity switches really change the networks and their behaviour (docs/model.md#ablation-ladder, docs/model.md#ambiguities)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dtgan.config.loader import load_config
from dtgan.config.model import ModelConfig
from dtgan.models import build_nets, he_init
from dtgan.models.blocks import NoiseInjection

K, P = 3, 2


def tiny(**overrides) -> ModelConfig:
    """The tiny preset's model section (32 px, narrow) with ``overrides`` applied and validated."""
    return ModelConfig.model_validate({**load_config("tiny", []).model.model_dump(), **overrides})


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_step_a_is_stargan_v2_without_any_dt_gan_part() -> None:
    nets = build_nets(tiny(ablation="a"), K, P)
    m, e, d, g = nets.mapping_network, nets.style_encoder, nets.discriminator, nets.generator
    assert m.content_heads is None and m.content_parameters() == [] and m.noise_strength_parameters() == []
    assert e.content_head is None
    assert d.fg_classifier is None and d.fg_content is None and d.bg_head is None
    assert hasattr(g, "decoder") and not hasattr(g, "bg_decoder")


def test_each_ladder_step_adds_exactly_its_part() -> None:
    nets = {s: build_nets(tiny(ablation=s), K, P) for s in "abcdefg"}
    assert nets["b"].mapping_network.content_heads is not None
    assert nets["b"].style_encoder.content_head is not None
    assert nets["b"].discriminator.fg_classifier is None
    assert nets["c"].discriminator.fg_classifier is not None and nets["c"].discriminator.bg_head is None
    assert nets["d"].discriminator.bg_head is not None
    assert hasattr(nets["e"].generator, "bg_decoder") and not hasattr(nets["e"].generator, "decoder")
    # The anchor adds no parameters; noise adds only the strengths.
    assert _count(nets["f"]) == _count(nets["e"])
    strengths = nets["g"].mapping_network.noise_strength_parameters()
    assert strengths and _count(nets["g"]) == _count(nets["f"]) + sum(p.numel() for p in strengths)
    assert nets["f"].mapping_network.noise_strength_parameters() == []


def test_explicit_toggles_override_the_ladder_step() -> None:
    nets = build_nets(tiny(ablation="g", fg_classifier=False, bg_classifier=False), K, P)
    out = nets.discriminator(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert out.fg_logits is None and out.bg_logits is None
    assert nets.discriminator.fg_classifier is None


@pytest.mark.parametrize("step", ["f", "g"])
def test_anchor_gives_exactly_zero_content_for_normal(step: str) -> None:
    nets = build_nets(tiny(ablation=step), K, P)
    y = torch.tensor([0, 1, 0, 2])
    z = torch.randn(4, 16, requires_grad=True)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    for net, inp in ((nets.mapping_network, z), (nets.style_encoder, x)):
        s, c = net(inp, y)
        assert torch.count_nonzero(c[y == 0]) == 0
        assert torch.all(c[y != 0].flatten(1).abs().sum(1) > 0)
        assert torch.all(s[y == 0].abs().sum(1) > 0)  # the style of Normal is kept
        (grad,) = torch.autograd.grad(c.sum(), inp)
        assert torch.count_nonzero(grad[y == 0]) == 0 and torch.all(grad[y != 0].flatten(1).abs().sum(1) > 0)


def test_without_anchor_normal_has_content() -> None:
    nets = build_nets(tiny(ablation="e"), K, P)
    _, c = nets.mapping_network(torch.randn(2, 16), torch.tensor([0, 0]))
    assert torch.all(c.flatten(1).abs().sum(1) > 0)


def test_mapping_noise_makes_content_random_for_a_fixed_z_even_in_eval_mode() -> None:
    noisy = build_nets(tiny(ablation="g"), K, P).mapping_network.eval()
    z, y = torch.randn(2, 16), torch.tensor([1, 2])
    with torch.no_grad():
        (s1, c1), (s2, c2) = noisy(z, y), noisy(z, y)
    assert torch.equal(s1, s2)  # the style branch has no noise
    assert (c1 - c2).abs().mean() > 1e-3


@pytest.mark.parametrize("overrides", [{"ablation": "f"}, {"ablation": "g", "noise_strength_init": 0.0}])
def test_without_noise_or_with_zero_strength_content_is_deterministic(overrides: dict) -> None:
    mapping = build_nets(tiny(**overrides), K, P).mapping_network.eval()
    z, y = torch.randn(2, 16), torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(mapping(z, y)[1], mapping(z, y)[1])


def test_noise_sits_after_every_content_conv_with_the_configured_strength() -> None:
    cfg = tiny(ablation="g", noise_strength_init=0.25)
    mapping = build_nets(cfg, K, P).mapping_network
    blocks_per_head = len(mapping.content_heads[0].blocks)
    layers = [m for m in mapping.modules() if isinstance(m, NoiseInjection)]
    assert len(layers) == K * (2 * blocks_per_head + 1)  # conv1, conv2 of each block and the final 1x1
    assert all(torch.all(p == 0.25) for p in mapping.noise_strength_parameters())
    content, noise = mapping.content_parameters(), mapping.noise_strength_parameters()
    assert not {id(p) for p in content} & {id(p) for p in noise}
    assert _count(mapping.content_heads) == sum(p.numel() for p in content + noise)


def test_content_heads_last_shares_the_branch_up_to_a_k_way_last_conv() -> None:
    full = build_nets(tiny(content_heads="full"), K, P).mapping_network
    last = build_nets(tiny(content_heads="last"), K, P).mapping_network
    assert len(full.content_heads) == K and len(last.content_heads) == 1
    assert last.content_heads[0].to_content.out_channels == 8 * K
    s, c = last(torch.randn(2, 16), torch.tensor([1, 2]))
    assert c.shape == (2, 8, 16, 16)
    assert _count(last) < _count(full)


@pytest.mark.parametrize(
    ("overrides", "fg_slice_matters"),
    [
        ({"ablation": "b"}, False),
        ({"ablation": "b", "content_injection": "concat"}, True),
        ({"ablation": "e"}, False),
    ],
)
def test_content_replaces_or_joins_the_fg_slice(overrides: dict, fg_slice_matters: bool) -> None:
    cfg = tiny(**overrides)
    nets = build_nets(cfg, K, P)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    s, c = nets.mapping_network(torch.randn(2, cfg.latent_dim), y)
    h = nets.generator.encode(x)
    h_other_fg = h.clone()
    h_other_fg[:, cfg.max_conv_dim - cfg.content_dim :] = torch.randn(2, cfg.content_dim, 16, 16)
    same = torch.equal(nets.generator.decode(h, s, c), nets.generator.decode(h_other_fg, s, c))
    assert same != fg_slice_matters
    if cfg.content_injection == "concat":
        assert nets.generator.decoder[0].conv1.in_channels == cfg.max_conv_dim + cfg.content_dim


def test_ambiguity_switches_shape_the_layers() -> None:
    nets = build_nets(tiny(stem_kernel_size=1, fusion="conv", fg_classifier_dim=24), K, P)
    assert nets.generator.from_rgb.kernel_size == (1, 1)
    assert nets.style_encoder.trunk[0].kernel_size == (1, 1)
    assert nets.discriminator.trunk[0].kernel_size == (1, 1)
    assert isinstance(nets.generator.fusion, nn.Conv2d) and nets.generator.fusion.in_channels == 64
    assert nets.discriminator.fg_classifier.fc.in_features == 24
    default = build_nets(tiny(), K, P)
    assert default.generator.from_rgb.kernel_size == (3, 3)
    assert isinstance(default.generator.fusion[0], nn.InstanceNorm2d)
    assert default.discriminator.fg_classifier.fc.in_features == 8 * K


@pytest.mark.parametrize("anchor_in_d", [False, True])
def test_anchor_in_discriminator_blanks_the_fg_classifier_input_for_normal(anchor_in_d: bool) -> None:
    d = build_nets(tiny(anchor_in_discriminator=anchor_in_d), K, P).discriminator
    x = torch.randn(2, 3, 32, 32)
    fg = d(x, torch.tensor([0, 0])).fg_logits
    assert torch.allclose(fg[0], fg[1]) == anchor_in_d  # zero content -> the same logits for any image
    fg_defect = d(x, torch.tensor([1, 1])).fg_logits
    assert not torch.allclose(fg_defect[0], fg_defect[1])


def test_he_init_draws_kaiming_normal_weights_and_zero_biases() -> None:
    torch.manual_seed(0)
    conv, fc, norm = nn.Conv2d(64, 64, 3), nn.Linear(256, 128), nn.InstanceNorm2d(8, affine=True)
    nn.init.constant_(norm.weight, 3.0)
    he_init(nn.ModuleList([conv, fc, norm]))
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    assert fc.weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0 and torch.count_nonzero(fc.bias) == 0
    assert torch.all(norm.weight == 3.0)  # norms are left alone
