"""Lazy R1 (loss.r1_every = k, StyleGAN2): on an R1 step D's gradient is the plain one plus k times the paper's R1
term; on the other steps there is no R1 term, no input gradient, and D may run compiled."""

import torch
from loss_testdata import make_batch

from dtgan.config import load_config
from dtgan.losses import discriminator_loss
from dtgan.losses.objectives import eager_module
from dtgan.models import build_nets
from dtgan.training.environment import Environment
from dtgan.training.schedules import r1_due
from dtgan.training.state import build_train_state
from dtgan.training.steps import train_step

K, P = 3, 2


def _config(*overrides):
    return load_config("tiny", ["model.ablation=g", *overrides])


def _batch64(latent_dim):
    b = make_batch(latent_dim)
    return type(b)(**{k: v.double() if v.is_floating_point() else v for k, v in vars(b).items()})


def _d_grads(nets, config, with_r1):
    """D's loss terms and its parameter gradients, with the same mapping noise every call (float64: the step
    without R1 passes reals and fakes as one batch, the R1 step apart, which sums in another order)."""
    nets.discriminator.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    total, terms = discriminator_loss(
        nets, _batch64(config.model.latent_dim), "latent", config.loss, config.model.toggles, with_r1
    )
    total.backward()
    return terms, [p.grad.clone() for p in eager_module(nets.discriminator).parameters()]


def test_the_lazy_r1_step_is_the_plain_step_plus_k_times_the_eager_r1_gradient():
    torch.manual_seed(0)
    eager = _config()
    nets = build_nets(eager.model, num_domains=K, num_products=P).double()
    k = 4
    lazy = _config(f"loss.r1_every={k}", "loss.lambda_reg=0.5")
    eager_half = _config("loss.lambda_reg=0.5")
    terms_1, with_r1 = _d_grads(nets, eager_half, True)  # the paper's step: adv + 0.5 R1
    terms_0, plain = _d_grads(nets, lazy, False)  # a lazy run's step without R1
    terms_k, lazy_r1 = _d_grads(nets, lazy, True)  # a lazy run's R1 step: adv + k * 0.5 R1
    assert "d/r1" not in terms_0 and "d/r1" in terms_k
    assert torch.equal(terms_k["d/r1"], terms_1["d/r1"])  # the logged term is the unweighted penalty
    assert torch.allclose(terms_k["d/total"] - terms_0["d/total"], k * 0.5 * terms_1["d/r1"], rtol=1e-5)
    for g0, g1, gk in zip(plain, with_r1, lazy_r1, strict=True):
        assert torch.allclose(gk - g0, k * (g1 - g0), rtol=1e-4, atol=1e-7)
    assert any((g1 - g0).abs().max() > 1e-6 for g0, g1 in zip(plain, with_r1))  # R1 has a gradient at all


def test_r1_every_1_is_the_paper_every_step():
    config = _config()
    assert config.loss.r1_every == 1
    assert all(r1_due(step, config.loss) for step in range(5))
    lazy = _config("loss.r1_every=16")
    assert [s for s in range(40) if r1_due(s, lazy.loss)] == [0, 16, 32]


def test_a_lazy_run_logs_r1_on_its_r1_steps_only_and_its_real_pass_has_no_input_gradient():
    config = _config("loss.r1_every=2", "train.batch_size=4", "train.performance.bf16_autocast=false")
    state = build_train_state(config, K, P, Environment())
    batch = make_batch(config.model.latent_dim)
    seen = []
    for _ in range(3):
        terms = train_step(state, batch, config)
        seen.append({k for k in terms if k.endswith("/r1")})
    assert seen == [{"d/latent/r1", "d/ref/r1"}, set(), {"d/latent/r1", "d/ref/r1"}]
    assert not batch.x_real.requires_grad


def test_with_lazy_r1_and_compile_d_is_compiled_and_its_r1_passes_run_eager(monkeypatch):
    """aot_eager refuses double backward like inductor does, without a C++ compiler: an R1 pass through the
    compiled D would raise."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module, **kw: real_compile(module, backend="aot_eager"))
    config = _config(
        "loss.r1_every=2",
        "train.batch_size=4",
        "train.performance.compile=true",
        "train.performance.bf16_autocast=false",
        "train.performance.channels_last=false",
    )
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: None)  # G, M, E stay eager here
    state = build_train_state(config, K, P, Environment())
    assert eager_module(state.nets.discriminator) is not state.nets.discriminator
    batch = make_batch(config.model.latent_dim)
    for _ in range(3):  # R1, compiled, R1
        terms = train_step(state, batch, config)
        assert all(torch.isfinite(v) for v in terms.values())
    eager_config = _config("loss.r1_every=2", "train.batch_size=4", "train.performance.compile=false")
    plain_d = build_train_state(eager_config, K, P, Environment()).nets.discriminator
    assert eager_module(plain_d) is plain_d  # without compile D is the plain module
