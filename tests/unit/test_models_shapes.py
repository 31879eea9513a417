"""Every ladder step of the tiny variant builds with the shapes of docs/interfaces.md "Networks"."""

from __future__ import annotations

import pytest
import torch

from dtgan.config.loader import load_config
from dtgan.config.model import LADDER_STEPS, ModelConfig
from dtgan.models import DiscriminatorOutput, Nets, build_nets
from dtgan.models.widths import layer_widths

K, P, N = 3, 4, 2


def tiny(**overrides) -> ModelConfig:
    """The tiny preset's model section (32 px, narrow) with ``overrides`` applied and validated."""
    return ModelConfig.model_validate({**load_config("tiny", []).model.model_dump(), **overrides})


def _inputs(cfg: ModelConfig, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 3, cfg.img_size, cfg.img_size, generator=gen)
    z = torch.randn(N, cfg.latent_dim, generator=gen)
    y = torch.tensor([0, 2])
    return x, z, y


@pytest.mark.parametrize("step", LADDER_STEPS)
def test_every_ladder_step_has_the_interface_shapes(step: str) -> None:
    cfg = tiny(ablation=step)
    torch.manual_seed(0)
    nets = build_nets(cfg, num_domains=K, num_products=P)
    assert isinstance(nets, Nets) and set(nets.keys()) == {
        "generator",
        "mapping_network",
        "style_encoder",
        "discriminator",
    }
    x, z, y = _inputs(cfg)
    side, content = 16, cfg.content_dim  # the paper's bottleneck side at every size >= 32 px
    has_content = cfg.toggles.style_content

    s, c = nets.mapping_network(z, y)
    s_ref, c_ref = nets.style_encoder(x, y)
    assert s.shape == s_ref.shape == (N, cfg.style_dim)
    if has_content:
        assert c.shape == c_ref.shape == (N, content, side, side)
    else:
        assert c is None and c_ref is None

    h = nets.generator.encode(x)
    assert h.shape == (N, cfg.max_conv_dim, side, side)
    assert torch.equal(nets.generator.fg_content(h), h[:, cfg.max_conv_dim - content :])
    x_fake = nets.generator(x, s, c)
    assert x_fake.shape == x.shape
    assert torch.equal(x_fake, nets.generator.decode(h, s, c))

    out = nets.discriminator(x_fake, y)
    assert isinstance(out, DiscriminatorOutput)
    assert out.logits.shape == (N,)
    assert (out.fg_logits is None) != cfg.toggles.fg_classifier
    assert (out.bg_logits is None) != cfg.toggles.bg_classifier
    if out.fg_logits is not None:
        assert out.fg_logits.shape == (N, K)
    if out.bg_logits is not None:
        assert out.bg_logits.shape == (N, P)


@pytest.mark.parametrize("separate", [False, True])
def test_both_decoders_give_an_image_of_the_input_size(separate: bool) -> None:
    cfg = tiny(ablation="d", separate_decoders=separate)
    nets = build_nets(cfg, K, P)
    x, z, y = _inputs(cfg)
    s, c = nets.mapping_network(z, y)
    gen = nets.generator
    assert hasattr(gen, "bg_decoder") == separate and hasattr(gen, "decoder") != separate
    assert gen(x, s, c).shape == (N, 3, 32, 32)


def test_generator_output_is_not_squashed_by_a_tanh() -> None:
    nets = build_nets(tiny(), K, P)
    assert not any(isinstance(m, torch.nn.Tanh) for m in nets.modules())
    x, z, y = _inputs(tiny())
    s, c = nets.mapping_network(z, y)
    assert nets.generator(x, s, c).abs().max() > 1.0  # He-initialised, unbounded output


def test_content_is_required_exactly_when_style_content_is_on() -> None:
    x, z, y = _inputs(tiny())
    stargan = build_nets(tiny(ablation="a"), K, P)
    s, _ = stargan.mapping_network(z, y)
    with pytest.raises(ValueError, match="style_content off"):
        stargan.generator(x, s, torch.zeros(N, 8, 16, 16))
    dtgan = build_nets(tiny(ablation="g"), K, P)
    s, _ = dtgan.mapping_network(z, y)
    with pytest.raises(ValueError, match="needs the content"):
        dtgan.generator(x, s)


def test_styles_and_contents_are_selected_per_sample_by_domain() -> None:
    cfg = tiny(ablation="e")  # content on, no anchor and no noise: deterministic outputs
    nets = build_nets(cfg, K, P)
    z = torch.randn(1, cfg.latent_dim).expand(K, -1)
    x = torch.randn(1, 3, 32, 32).expand(K, -1, -1, -1)
    y = torch.arange(K)
    for net, inp in ((nets.mapping_network, z), (nets.style_encoder, x)):
        s, c = net(inp, y)
        for k in range(K):
            s_k, c_k = net(inp[:1], torch.tensor([k]))
            torch.testing.assert_close(
                s[k : k + 1], s_k, atol=1e-4, rtol=1e-4
            )  # batch-size dependent conv sums
            torch.testing.assert_close(c[k : k + 1], c_k, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(s[0], s[1]) and not torch.allclose(c[1], c[2])
    logits_all = torch.stack([nets.discriminator(x, torch.full((K,), k)).logits for k in range(K)], dim=1)
    torch.testing.assert_close(nets.discriminator(x, y).logits, logits_all.diagonal())


def test_tiny_widths_follow_the_documented_rules() -> None:
    w = layer_widths(tiny())
    # one down level keeps the paper's 16 x 16 bottleneck at 32 px; content : background = 8 : 56 = 64 : 448
    assert w.bottleneck_side == 16 and w.bg == 56 and w.content == 8
    assert [(b.dim_in, b.dim_out, b.resample) for b in w.encoder] == [
        (16, 32, True),
        (32, 64, False),
        (64, 64, False),
    ]
    bg = [(56, 56, False), (56, 64, False), (64, 32, False), (32, 56, True)]
    fg = [(8, 8, False), (8, 32, False), (32, 32, False), (32, 32, False), (32, 16, False), (16, 8, True)]
    assert [(b.dim_in, b.dim_out, b.resample) for b in w.bg_decoder] == bg
    assert [(b.dim_in, b.dim_out, b.resample) for b in w.fg_decoder] == fg
    assert [(b.dim_in, b.dim_out) for b in w.trunk] == [
        (16, 32)
    ]  # E/D: 32 -> 16, then 8 and 4 as StarGAN's E
    assert [(b.dim_in, b.dim_out) for b in w.adv_branch] == [(32, 64), (64, 64)] and w.adv_kernel == 4
    # M's content branch: 1 -> 2 -> 4 -> 8 -> 16 at widths 64, 64, 32, 16 (Table 10c's 512, 512, 256, 128)
    assert [(b.dim_in, b.dim_out) for b in w.mapping_content] == [(64, 64), (64, 64), (64, 32), (32, 16)]


def test_the_paper_widths_are_tables_9_to_11() -> None:
    w = layer_widths(load_config("paper", []).model)
    assert w.bottleneck_side == 16 and w.bg == 448 and w.content == 64
    assert [(b.dim_in, b.dim_out, b.resample) for b in w.encoder] == [
        (128, 256, True),
        (256, 512, True),
        (512, 512, True),
        (512, 512, False),
        (512, 512, False),
    ]
    assert [(b.dim_in, b.dim_out) for b in w.bg_decoder] == [
        (448, 448),
        (448, 512),
        (512, 512),
        (512, 512),
        (512, 256),
        (256, 448),
    ]
    assert [(b.dim_in, b.dim_out) for b in w.fg_decoder] == [
        (64, 64),
        (64, 256),
        (256, 256),
        (256, 256),
        (256, 128),
        (128, 64),
    ]
    assert [(b.dim_in, b.dim_out) for b in w.mapping_content] == [
        (512, 512),
        (512, 512),
        (512, 256),
        (256, 128),
    ]


@pytest.mark.parametrize("img_size", [16, 64, 256])
def test_other_image_sizes_keep_the_bottleneck_at_16(img_size: int) -> None:
    cfg = tiny(img_size=img_size, stem_dim=8, max_conv_dim=32, content_dim=8)
    nets = build_nets(cfg, K, P)
    x = torch.randn(1, 3, img_size, img_size)
    y = torch.tensor([1])
    s, c = nets.mapping_network(torch.randn(1, cfg.latent_dim), y)
    side = 8 if img_size == 16 else 16  # at least one level: 16 px gets an 8 x 8 bottleneck
    assert c.shape == (1, 8, side, side)
    assert nets.style_encoder(x, y)[1].shape == c.shape
    assert nets.generator(x, s, c).shape == x.shape
    out = nets.discriminator(x, y)
    assert out.logits.shape == (1,) and out.fg_logits.shape == (1, K) and out.bg_logits.shape == (1, P)
