"""The D and G objectives on the tiny real networks: which terms each ladder step uses, weights, finiteness."""

import pytest
import torch
from loss_testdata import make_batch

from dtgan.config import load_config
from dtgan.losses import discriminator_loss, generator_loss
from dtgan.models import build_nets

K, P, N = 3, 2, 4


def _config(*overrides):
    return load_config("tiny", list(overrides))


def _losses(config, guidance="latent", ds_weight=1.0, seed=0):
    torch.manual_seed(seed)
    nets = build_nets(config.model, num_domains=K, num_products=P)
    batch = make_batch(config.model.latent_dim)
    torch.manual_seed(seed + 1)  # same mapping noise for both objectives of a comparison
    d_total, d_terms = discriminator_loss(nets, batch, guidance, config.loss, config.model.toggles)
    g_total, g_terms = generator_loss(nets, batch, guidance, config.loss, config.model.toggles, ds_weight)
    return d_total, d_terms, g_total, g_terms


@pytest.mark.parametrize(
    ("ablation", "d_names", "g_names"),
    [
        ("a", set(), {"adv", "sty", "ds", "cyc"}),
        ("b", set(), {"adv", "sty", "con_sty", "ds", "cyc", "con"}),
        ("c", {"fg_cls"}, {"adv", "sty", "con_sty", "ds", "cyc", "con", "fg_cls"}),
        ("g", {"fg_cls", "bg_cls"}, {"adv", "sty", "con_sty", "ds", "cyc", "con", "fg_cls", "bg_cls"}),
    ],
)
def test_each_ladder_step_uses_its_terms_and_all_are_finite(ablation, d_names, g_names):
    _, d_terms, _, g_terms = _losses(_config(f"model.ablation={ablation}"))
    assert set(d_terms) == {f"d/{n}" for n in {"adv_real", "adv_fake", "r1", "total"} | d_names}
    assert set(g_terms) == {f"g/{n}" for n in g_names | {"total"}}
    for name, value in {**d_terms, **g_terms}.items():
        assert value.ndim == 0 and torch.isfinite(value), name


@pytest.mark.parametrize(
    ("weight", "term"),
    [
        ("lambda_reg", "d/r1"),
        ("lambda_fg", "d/fg_cls"),
        ("lambda_bg", "d/bg_cls"),
        ("lambda_sty", "g/sty"),
        ("lambda_sty", "g/con_sty"),
        ("lambda_cyc", "g/cyc"),
        ("lambda_con", "g/con"),
        ("lambda_fg", "g/fg_cls"),
        ("lambda_bg", "g/bg_cls"),
    ],
)
def test_a_term_is_zero_when_its_weight_is_zero(weight, term):
    _, d_terms, _, g_terms = _losses(_config(f"loss.{weight}=0"))
    assert {**d_terms, **g_terms}[term].item() == 0.0
    _, d_on, _, g_on = _losses(_config())
    assert {**d_on, **g_on}[term].item() > 0.0


def test_diversity_is_zero_once_lambda_ds_has_decayed():
    *_, g_terms = _losses(_config(), ds_weight=0.0)
    assert g_terms["g/ds"].item() == 0.0


def test_totals_are_the_weighted_sums_of_eq_8():
    cfg = _config(
        "loss.lambda_reg=2",
        "loss.lambda_sty=3",
        "loss.lambda_cyc=0.5",
        "loss.lambda_con=4",
        "loss.lambda_fg=5",
        "loss.lambda_bg=6",
    )
    d_total, d, g_total, g = _losses(cfg, ds_weight=0.7)
    expected_d = d["d/adv_real"] + d["d/adv_fake"] + 2 * d["d/r1"] + 5 * d["d/fg_cls"] + 6 * d["d/bg_cls"]
    expected_g = (
        g["g/adv"]
        + 3 * (g["g/sty"] + g["g/con_sty"])
        - 0.7 * g["g/ds"]
        + 0.5 * g["g/cyc"]
        + 4 * g["g/con"]
        + 5 * g["g/fg_cls"]
        + 6 * g["g/bg_cls"]
    )
    torch.testing.assert_close(d_total, expected_d)
    torch.testing.assert_close(g_total, expected_g)
    assert d["d/total"] is d_total and g["g/total"] is g_total


def test_content_consistency_enters_at_the_anchor_step_when_configured():
    with_anchor = "loss.content_consistency_with=anchor_normal"
    *_, g_b = _losses(_config("model.ablation=b", with_anchor))
    *_, g_f = _losses(_config("model.ablation=f", with_anchor))
    assert "g/con" not in g_b and "g/con" in g_f


def test_acgan_classifier_losses_also_train_d_on_fakes():
    _, d_terms, *_ = _losses(_config("loss.classifier_losses=acgan"))
    assert {"d/fg_cls_fake", "d/bg_cls_fake"} <= set(d_terms)


def test_ds_reduction_mean_is_a_sixth_of_the_sum():
    *_, g_sum = _losses(_config("loss.ds_reduction=sum"))
    *_, g_mean = _losses(_config("loss.ds_reduction=mean"))
    torch.testing.assert_close(g_mean["g/ds"] * 6, g_sum["g/ds"])


def test_ds_detach_all_but_first_keeps_the_value_and_cuts_gradients_of_the_second_code():
    torch.manual_seed(0)
    nets = build_nets(_config().model, num_domains=K, num_products=P)
    results = {}
    for detach in ("none", "all_but_first"):
        cfg = _config(f"loss.ds_detach={detach}")
        batch = make_batch(cfg.model.latent_dim)
        batch.z_trg2.requires_grad_(True)  # z_trg2 reaches only G_12, G_21, G_22
        torch.manual_seed(1)  # the same mapping noise in both readings
        _, terms = generator_loss(nets, batch, "latent", cfg.loss, cfg.model.toggles, 1.0)
        terms["g/ds"].backward()
        results[detach] = (terms["g/ds"].item(), batch.z_trg2.grad)
    assert results["none"][0] == pytest.approx(results["all_but_first"][0], rel=1e-5)
    assert results["none"][1].abs().sum() > 0
    assert results["all_but_first"][1] is None


def test_reference_guidance_gives_finite_terms():
    _, d_terms, _, g_terms = _losses(_config(), guidance="reference")
    assert all(torch.isfinite(v) for v in {**d_terms, **g_terms}.values())


@pytest.mark.parametrize("ablation", ["a", "g"])
def test_self_reconstruction_is_off_in_the_paper_and_is_x_with_its_own_codes_when_on(ablation):
    _, _, paper_total, paper_terms = _losses(_config(f"model.ablation={ablation}"))
    assert "g/self_rec" not in paper_terms
    cfg = _config(f"model.ablation={ablation}", "loss.lambda_self_rec=2")
    _, _, total, terms = _losses(cfg)
    torch.manual_seed(0)
    nets = build_nets(cfg.model, num_domains=K, num_products=P)  # the same networks; E and G draw no noise
    batch = make_batch(cfg.model.latent_dim)
    s_org, c_org = nets.style_encoder(batch.x_real, batch.y_org)
    expected = (nets.generator(batch.x_real, s_org, c_org) - batch.x_real).abs().mean()
    torch.testing.assert_close(terms["g/self_rec"], expected, rtol=1e-4, atol=1e-6)
    # the paper's terms are unchanged by it, and it enters the total with its weight
    assert all(torch.allclose(terms[k], v) for k, v in paper_terms.items() if k != "g/total")
    torch.testing.assert_close(total, paper_total + 2 * terms["g/self_rec"], rtol=1e-4, atol=1e-5)
