"""The paper configuration at 128 px has the tensor shapes of Tables 9-11 (docs/model.md#tensor-shapes) and pinned sizes."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import torch
from torch import nn

from dtgan.config.model import ModelConfig
from dtgan.models import Nets, build_nets

K, P = 3, 3  # SDI: {normal, scratch, spot} x products {A, B, C}

# Parameter counts at the paper configuration (128 px, K = 3, P = 3), computed once and pinned. Cross-checks:
# M's content branch is 11,832,576 per domain copy (docs/model.md#a6: about 11.8 M, 35 M for K = 3); E(g) - E(a) is the
# 1x1 content conv 512 -> 192; D(g) - D(a) is the BG Linear, the content conv, 4 ResBlks of 192 and a Linear.
PARAMS_STEP_A = {
    "generator": 33_632_003,
    "mapping_network": 3_259_072,
    "style_encoder": 20_832_576,
    "discriminator": 20_735_619,
}
PARAMS_STEP_G = {
    "generator": 43_171_203,
    "mapping_network": 38_756_800,
    "style_encoder": 20_931_072,
    "discriminator": 23_491_977,
}


@pytest.fixture(scope="module")
def paper_nets() -> dict[str, Nets]:
    torch.manual_seed(0)
    return {step: build_nets(ModelConfig(ablation=step), K, P) for step in "ag"}


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shapes(modules: Iterable[nn.Module], run) -> list[tuple[int, ...]]:
    """The output shapes (without the batch dim) of ``modules`` while ``run()`` executes, in call order."""
    seen: list[tuple[int, ...]] = []

    def record(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        seen.append(tuple(out.shape[1:]))

    handles = [m.register_forward_hook(record) for m in modules]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return seen


def test_paper_parameter_counts_are_pinned(paper_nets: dict[str, Nets]) -> None:
    assert {k: _count(v) for k, v in paper_nets["a"].items()} == PARAMS_STEP_A
    assert {k: _count(v) for k, v in paper_nets["g"].items()} == PARAMS_STEP_G
    heads = paper_nets["g"].mapping_network.content_heads
    assert [_count(h) for h in heads] == [11_832_576] * K


def test_generator_has_the_shapes_of_table_9(paper_nets: dict[str, Nets]) -> None:
    g = paper_nets["g"].generator
    x = torch.randn(1, 3, 128, 128)
    s, c = torch.randn(1, 64), torch.randn(1, 64, 16, 16)
    fusion_in: list[tuple[int, ...]] = []
    hook = g.fusion.register_forward_pre_hook(lambda _m, args: fusion_in.append(tuple(args[0].shape)))
    x_fake: list[torch.Tensor] = []
    shapes = _shapes(
        [g.from_rgb, *g.encoder, *g.bg_decoder, *g.fg_decoder], lambda: x_fake.append(g(x, s, c))
    )  # one forward; the BG decoder runs before the FG decoder
    hook.remove()
    stem, encoder, bg, fg = shapes[:1], shapes[1:6], shapes[6:12], shapes[12:]
    assert stem == [(128, 128, 128)]
    assert encoder == [(256, 64, 64), (512, 32, 32), (512, 16, 16), (512, 16, 16), (512, 16, 16)]
    assert bg == [(448, 16, 16), (512, 16, 16), (512, 16, 16), (512, 32, 32), (256, 64, 64), (448, 128, 128)]
    assert fg == [(64, 16, 16), (256, 16, 16), (256, 16, 16), (256, 32, 32), (128, 64, 64), (64, 128, 128)]
    assert fusion_in == [(1, 512, 128, 128)]
    assert x_fake[0].shape == (1, 3, 128, 128)
    h = torch.randn(1, 512, 16, 16)
    assert g.fg_content(h).shape == (1, 64, 16, 16) and torch.equal(g.fg_content(h), h[:, 448:])


def test_stargan_generator_has_the_mirrored_adain_decoder(paper_nets: dict[str, Nets]) -> None:
    g = paper_nets["a"].generator
    x, s = torch.randn(1, 3, 128, 128), torch.randn(1, 64)
    decoder = _shapes(g.decoder, lambda: g(x, s))
    assert decoder == [(512, 16, 16), (512, 16, 16), (512, 32, 32), (256, 64, 64), (128, 128, 128)]


def test_mapping_network_has_the_shapes_of_table_10(paper_nets: dict[str, Nets]) -> None:
    m = paper_nets["g"].mapping_network
    z, y = torch.randn(1, 16), torch.tensor([1])
    trunk = _shapes([m.shared], lambda: m(z, y))
    assert trunk == [(512,)]
    head = m.content_heads[0]
    stages = _shapes([*head.blocks, head.norm], lambda: m(z, y))
    assert stages == [(512, 2, 2), (512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 16, 16)]
    with torch.no_grad():
        s, c = m(z, y)
    assert s.shape == (1, 64) and c.shape == (1, 64, 16, 16)


def test_encoder_and_discriminator_have_the_shapes_of_table_11(paper_nets: dict[str, Nets]) -> None:
    e, d = paper_nets["g"].style_encoder, paper_nets["g"].discriminator
    x, y = torch.randn(1, 3, 128, 128), torch.tensor([2])
    trunk = [(128, 128, 128), (256, 64, 64), (512, 32, 32), (512, 16, 16)]
    branch = [(512, 8, 8), (512, 4, 4), (512, 1, 1), (512,)]  # down, down, 4x4 valid conv, flatten
    outputs = []
    for net, heads in ((e, [e.content_head]), (d, [d.fg_content, *d.fg_classifier.blocks])):
        layers = [*net.trunk, net.branch[0], net.branch[1], net.branch[3], net.branch, *heads]
        shapes = _shapes(layers, lambda net=net: outputs.append(net(x, y)))  # one forward each
        assert shapes[:8] == trunk + branch
        outputs.append(shapes[8:])
    (s, c), e_heads, d_out, d_heads = outputs
    assert s.shape == (1, 64) and c.shape == (1, 64, 16, 16)
    assert e_heads == [(64 * K, 16, 16)]  # all K contents before the selection by y
    assert d_heads == [(64 * K, 16, 16), (192, 8, 8), (192, 4, 4), (192, 2, 2), (192, 1, 1)]
    assert d_out.logits.shape == (1,) and d_out.fg_logits.shape == (1, K) and d_out.bg_logits.shape == (1, P)
