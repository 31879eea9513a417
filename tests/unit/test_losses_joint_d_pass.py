"""D's steps without R1 (lazy R1) pass reals and fakes through D as one batch of 2N: the same losses and D
gradients as two passes (D has no batch-coupled layer), in float64 to round-off; R1 steps keep their fp32
real pass apart."""

import pytest
import torch
from loss_testdata import make_batch

from dtgan.config import load_config
from dtgan.losses import discriminator_loss
from dtgan.losses.adversarial import adversarial_loss
from dtgan.losses.classification import bg_classification_loss, fg_classification_loss
from dtgan.losses.objectives import joint_pass, target_codes
from dtgan.models import build_nets

K, P = 3, 2


def _nets(config):
    torch.manual_seed(0)
    return build_nets(config.model, num_domains=K, num_products=P).to(torch.float64)


def _batch(config):
    b = make_batch(config.model.latent_dim)
    as64 = {k: (v.double() if v.is_floating_point() else v) for k, v in vars(b).items()}
    return type(b)(**as64)


def test_the_joint_pass_returns_each_half_as_its_own_pass():
    config = load_config("tiny", ["model.ablation=g"])
    d = _nets(config).discriminator
    batch = _batch(config)
    x_fake = batch.x_ref  # any second set of images
    real, fake = joint_pass(d, batch.x_real, batch.y_org, x_fake, batch.y_trg)
    for joint, alone in ((real, d(batch.x_real, batch.y_org)), (fake, d(x_fake, batch.y_trg))):
        assert joint.fg_logits is not None and joint.bg_logits is not None  # step (g) has both heads
        for a, b in zip(joint, alone, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_a_d_step_without_r1_equals_the_two_pass_loss_and_gradients():
    config = load_config("tiny", ["model.ablation=g", "loss.r1_every=4", "loss.classifier_losses=acgan"])
    nets = _nets(config)
    batch = _batch(config)
    d = nets.discriminator

    torch.manual_seed(1)  # the same mapping noise in both readings
    total, terms = discriminator_loss(nets, batch, "latent", config.loss, config.model.toggles, with_r1=False)
    d.zero_grad(set_to_none=True)
    total.backward()
    joint_grads = [p.grad.clone() for p in d.parameters()]

    # the two-pass reading, written out: D on reals, D on the fake G(x, M(z, y~))
    torch.manual_seed(1)
    with torch.no_grad():
        s, c = target_codes(nets, batch, "latent", 1)
        x_fake = nets.generator(batch.x_real, s, c)
    out_real, out_fake = d(batch.x_real, batch.y_org), d(x_fake, batch.y_trg)
    lc = config.loss
    expected = {
        "d/adv_real": adversarial_loss(out_real.logits, 1.0),
        "d/adv_fake": adversarial_loss(out_fake.logits, 0.0),
        "d/fg_cls": fg_classification_loss(out_real.fg_logits, batch.y_org),
        "d/fg_cls_fake": fg_classification_loss(out_fake.fg_logits, batch.y_trg),
        "d/bg_cls": bg_classification_loss(out_real.bg_logits, batch.p_org),
        "d/bg_cls_fake": bg_classification_loss(out_fake.bg_logits, batch.p_org),
    }
    two_pass_total = (
        expected["d/adv_real"]
        + expected["d/adv_fake"]
        + lc.lambda_fg * (expected["d/fg_cls"] + expected["d/fg_cls_fake"])
        + lc.lambda_bg * (expected["d/bg_cls"] + expected["d/bg_cls_fake"])
    )
    assert set(terms) == {*expected, "d/total"}  # no d/r1 term on a lazy run's step without R1
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, rtol=1e-10, atol=1e-12)
    d.zero_grad(set_to_none=True)
    two_pass_total.backward()
    for g_joint, p in zip(joint_grads, d.parameters(), strict=True):
        torch.testing.assert_close(g_joint, p.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(total, two_pass_total, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("r1_every", [1, 4])
def test_r1_steps_keep_the_real_pass_apart_and_in_fp32(monkeypatch, r1_every):
    from dtgan.losses import objectives

    calls = []
    monkeypatch.setattr(objectives, "joint_pass", lambda *a: calls.append(1) or joint_pass(*a))
    config = load_config("tiny", ["model.ablation=g", f"loss.r1_every={r1_every}"])
    nets = _nets(config).float()
    batch = make_batch(config.model.latent_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, terms = discriminator_loss(nets, batch, "latent", config.loss, config.model.toggles, with_r1=True)
    assert not calls and terms["d/adv_real"].dtype == torch.float32 and terms["d/r1"] > 0
