"""The G objective's shared passes (BG part reused by all mixes, batched mixes, batched E) equal the plain reading."""

import pytest
import torch
from loss_testdata import make_batch

from dtgan.config import load_config
from dtgan.losses import generator_loss
from dtgan.losses.adversarial import adversarial_loss
from dtgan.losses.classification import bg_classification_loss, fg_classification_loss
from dtgan.losses.diversity import diversity_loss_mixed, diversity_loss_pair
from dtgan.losses.objectives import content_consistency_enabled, target_codes
from dtgan.losses.reconstruction import (
    content_consistency_loss,
    content_reconstruction_loss,
    cycle_loss,
    self_reconstruction_loss,
    style_reconstruction_loss,
)
from dtgan.models import build_nets

K, P, N = 3, 2, 4
TOL = {"rtol": 1e-4, "atol": 1e-5}
VANISHING = 1e-5  # gradient norm below which exact maths gives 0 (see assert_grads_close)


def plain_generator_loss(nets, batch, guidance, loss_cfg, toggles, ds_weight):
    """Eq. 8's G side read term by term: every term makes its own full G and E calls (no shared passes)."""
    G, E, mixed = nets.generator, nets.style_encoder, toggles.style_content
    s1, c1 = target_codes(nets, batch, guidance, 1)
    s2, c2 = target_codes(nets, batch, guidance, 2)
    x_11 = G(batch.x_real, s1, c1)
    out = nets.discriminator(x_11, batch.y_trg)
    t = {"g/adv": adversarial_loss(out.logits, 1.0)}
    s_pred, c_pred = E(x_11, batch.y_trg)
    t["g/sty"] = style_reconstruction_loss(s_pred, s1)
    if mixed:
        t["g/con_sty"] = content_reconstruction_loss(c_pred, c1)
        detach = torch.no_grad() if loss_cfg.ds_detach == "all_but_first" else torch.enable_grad()
        with detach:
            rest = G(batch.x_real, s1, c2), G(batch.x_real, s2, c1), G(batch.x_real, s2, c2)
        t["g/ds"] = diversity_loss_mixed(x_11, *rest, reduction=loss_cfg.ds_reduction)
        if ds_weight <= 0:
            t["g/ds"] = torch.zeros(())
    else:
        with torch.no_grad():  # StarGAN detaches the second image
            x_2 = G(batch.x_real, s2)
        t["g/ds"] = diversity_loss_pair(x_11, x_2)
    s_org, c_org = E(batch.x_real, batch.y_org)
    t["g/cyc"] = cycle_loss(G(x_11, s_org, c_org), batch.x_real)
    if mixed and content_consistency_enabled(loss_cfg, toggles):
        fg_real, fg_fake = G.fg_content(G.encode(batch.x_real)), G.fg_content(G.encode(x_11))
        t["g/con"] = content_consistency_loss(fg_real, c_org, fg_fake, c1)
    if loss_cfg.lambda_self_rec > 0:
        t["g/self_rec"] = self_reconstruction_loss(G(batch.x_real, s_org, c_org), batch.x_real)
    if toggles.fg_classifier:
        t["g/fg_cls"] = fg_classification_loss(out.fg_logits, batch.y_trg)
    if toggles.bg_classifier:
        t["g/bg_cls"] = bg_classification_loss(out.bg_logits, batch.p_org)
    weights = {"g/ds": -ds_weight}  # all other lambdas are 1 in these tests
    t["g/total"] = sum(weights.get(k, 1.0) * v for k, v in t.items())
    return t["g/total"], t


def _terms_and_grads(loss_fn, config, guidance, ds_weight=1.0):
    torch.manual_seed(0)
    nets = build_nets(config.model, num_domains=K, num_products=P)
    batch = make_batch(config.model.latent_dim)
    torch.manual_seed(1)  # the same mapping noise for both readings (M is called for z1, then z2)
    total, terms = loss_fn(nets, batch, guidance, config.loss, config.model.toggles, ds_weight)
    total.backward()
    grads = {name: p.grad.clone() for name, p in nets.named_parameters() if p.grad is not None}
    return terms, grads


@pytest.mark.parametrize(
    ("ablation", "ds_detach", "guidance", "self_rec", "ds_weight"),
    [
        ("a", "none", "latent", 0.0, 1.0),
        ("b", "none", "latent", 0.0, 1.0),
        ("d", "all_but_first", "reference", 0.0, 1.0),
        ("e", "none", "latent", 0.0, 1.0),
        ("g", "none", "latent", 0.0, 1.0),
        ("g", "all_but_first", "reference", 0.0, 1.0),
        # the self-reconstruction (cpu32's lambda_self_rec) decoded in the mixes' batch, E's passes batched
        ("g", "none", "latent", 1.0, 1.0),
        ("g", "none", "reference", 1.0, 1.0),
        ("g", "all_but_first", "latent", 1.0, 1.0),
        ("g", "all_but_first", "reference", 1.0, 1.0),
        ("g", "none", "reference", 1.0, 0.0),  # diversity decayed: G_11 and x's own decode, 2N rows
        ("g", "none", "reference", 0.0, 0.0),
        ("a", "none", "reference", 1.0, 1.0),  # no content codes
    ],
)
def test_generator_loss_with_shared_passes_equals_plain_reading(
    ablation, ds_detach, guidance, self_rec, ds_weight
):
    config = load_config(
        "tiny",
        [f"model.ablation={ablation}", f"loss.ds_detach={ds_detach}", f"loss.lambda_self_rec={self_rec}"],
    )
    fast_terms, fast_grads = _terms_and_grads(generator_loss, config, guidance, ds_weight)
    plain_terms, plain_grads = _terms_and_grads(plain_generator_loss, config, guidance, ds_weight)
    assert fast_terms.keys() == plain_terms.keys()
    for name in plain_terms:
        torch.testing.assert_close(fast_terms[name], plain_terms[name], **TOL, msg=name)
    assert fast_grads.keys() == plain_grads.keys()
    for name in plain_grads:
        assert_grads_close(fast_grads[name], plain_grads[name], name)
    assert any(g.abs().sum() > 0 for g in fast_grads.values())


def assert_grads_close(fast: torch.Tensor, plain: torch.Tensor, name: str) -> None:
    """Equal within float tolerance, judged on the whole tensor: with the anchor, a target of Normal makes two
    mixes equal by construction (c~1 = c~2 = 0), and |G_11 - G_12| then takes a subgradient whose sign follows
    float rounding (exactly 0 when decoded apart, +-1 ulp when decoded in one batch). That moves a few
    elements by O(1e-5) relative, never the tensor: a wrong gradient is off by O(1)."""
    scale = float(plain.norm())
    # Parameters whose gradient vanishes in exact maths (biases before an IN) keep float32 round-off, up to
    # ~2e-6 here (an AVX-512 EPYC) where the largest gradients are O(1): a wrong gradient is far above 1e-5.
    if scale < VANISHING:
        assert float(fast.norm()) < VANISHING, name
        return
    error = float((fast - plain).norm()) / scale
    assert error <= 1e-3, f"{name}: relative error {error}"


@pytest.mark.parametrize("fusion", ["norm_act_conv", "conv"])
def test_decode_with_background_part_equals_full_decode_with_gradients(fusion):
    model_cfg = load_config("tiny", ["model.ablation=g", f"model.fusion={fusion}"]).model
    torch.manual_seed(0)
    generator = build_nets(model_cfg, num_domains=K, num_products=P).generator
    h = torch.randn(N, 64, 16, 16, requires_grad=True)
    s = torch.randn(N, 16, requires_grad=True)
    c = torch.randn(N, 8, 16, 16, requires_grad=True)
    results = []
    for split in (False, True):
        generator.zero_grad()
        background = generator.decode_background(h) if split else None
        x = generator.decode(h, s, c, background=background)
        grads_in = torch.autograd.grad((x * x.detach().sign()).sum(), (h, s, c), retain_graph=True)
        x.sum().backward()
        params = {n: p.grad.clone() for n, p in generator.named_parameters() if p.grad is not None}
        results.append((x, grads_in, params))
    (x0, gin0, p0), (x1, gin1, p1) = results
    torch.testing.assert_close(x1, x0, **TOL)
    for a, b in zip(gin1, gin0):
        torch.testing.assert_close(a, b, **TOL)
    assert p1.keys() == p0.keys()
    for name in p0:
        torch.testing.assert_close(p1[name], p0[name], **TOL, msg=name)


def test_unified_decoder_has_no_background_part():
    generator = build_nets(
        load_config("tiny", ["model.ablation=d"]).model, num_domains=K, num_products=P
    ).generator
    h = torch.randn(N, 64, 16, 16)
    assert generator.decode_background(h) is None
    with pytest.raises(ValueError, match="separate_decoders"):
        generator.decode(
            h, torch.randn(N, 16), torch.randn(N, 8, 16, 16), background=torch.zeros(N, 3, 32, 32)
        )


@pytest.mark.parametrize("ablation", ["a", "g"])
@pytest.mark.parametrize("guidance", ["latent", "reference"])
def test_d_objective_with_shared_sources_equals_the_full_generator_call(ablation, guidance):
    """The two D steps share G's encoding of x_real and its BG part (encode_sources): same terms and gradients."""
    from dtgan.losses import discriminator_loss
    from dtgan.losses.objectives import encode_sources

    config = load_config("tiny", [f"model.ablation={ablation}"])
    torch.manual_seed(0)
    nets = build_nets(config.model, num_domains=K, num_products=P)
    batch = make_batch(config.model.latent_dim)
    results = []
    for sources in (None, encode_sources(nets.generator, batch.x_real)):
        nets.discriminator.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the same mapping noise
        total, terms = discriminator_loss(
            nets, batch, guidance, config.loss, config.model.toggles, sources=sources
        )
        total.backward()
        results.append((terms, [p.grad.clone() for p in nets.discriminator.parameters()]))
    (full, full_grads), (shared, shared_grads) = results
    assert set(full) == set(shared)
    for name in full:
        torch.testing.assert_close(shared[name], full[name], **TOL)
    for a, b in zip(full_grads, shared_grads, strict=True):
        torch.testing.assert_close(b, a, **TOL)
