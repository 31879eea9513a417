"""The compiled step (``train.performance.compile``) changes nothing but speed: a few steps give the losses and
weights of the eager step from the same seed, with D compiled between lazy-R1 steps and the mapping network's
noise drawn from the same generator.

The graphs are captured by dynamo and differentiated by AOT autograd as in a real compile; the ``aot_eager``
backend then runs them with ATen kernels instead of inductor's generated C++ (whose warm-up takes minutes on a
CPU: ``benchmarks/train_step.py --modes auto,auto+compile`` measures it)."""

import torch
from loss_testdata import make_batch

from dtgan.config import load_config
from dtgan.losses.objectives import eager_module
from dtgan.training.environment import Environment
from dtgan.training.performance import RECOMPILE_LIMIT, Performance
from dtgan.training.state import build_train_state
from dtgan.training.steps import train_step

K, P = 3, 2
STEPS = 4  # R1, compiled D, R1, compiled D (loss.r1_every=2)


def _run(compile: bool, monkeypatch=None, mode: str = "default"):
    config = load_config(
        "tiny",
        [
            "model.ablation=g",
            "train.batch_size=4",
            "loss.r1_every=2",
            f"train.performance.compile={str(compile).lower()}",
            f"train.performance.compile_mode={mode}",
            "train.performance.bf16_autocast=false",
            "train.performance.channels_last=false",
            "train.performance.fused_adam=false",
        ],
    )
    captured = []
    if compile:
        real_compile = torch.compile

        def aot_eager(model, **kwargs):
            captured.append(kwargs)
            return real_compile(model, **(kwargs | {"backend": "aot_eager", "mode": None}))

        monkeypatch.setattr(torch, "compile", aot_eager)
    # float64: Adam's first updates are ~lr * sign(gradient), so float32 round-off in a gradient near zero (the
    # order of a few sums differs in a captured graph) would flip whole updates and hide a real difference
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        state = build_train_state(config, K, P, Environment())
        batch = make_batch(config.model.latent_dim)
        torch.manual_seed(1)  # the noise of M and of the D steps' codes
        terms = [train_step(state, batch, config) for _ in range(STEPS)]
    finally:
        torch.set_default_dtype(torch.float32)
    return state, terms, captured


def test_the_compiled_step_gives_the_eager_steps_losses_and_weights(monkeypatch):
    eager_state, eager_terms, _ = _run(compile=False)
    state, terms, captured = _run(compile=True, monkeypatch=monkeypatch)
    # what was compiled: every block of G, M, E, and D for the steps without R1; static shapes
    blocks = [len(c) if isinstance(c, torch.nn.ModuleList) else 1 for c in state.nets.generator.children()]
    assert len(captured) == sum(blocks) + 3
    assert all(kw["dynamic"] is False and kw["mode"] == "default" for kw in captured)
    assert eager_module(state.nets.discriminator) is not state.nets.discriminator
    assert torch._inductor.config.fallback_random
    assert torch._dynamo.config.recompile_limit >= RECOMPILE_LIMIT
    for step, (ours, ref) in enumerate(zip(terms, eager_terms)):
        assert ours.keys() == ref.keys(), step
        for name in ref:
            torch.testing.assert_close(
                ours[name], ref[name], rtol=1e-9, atol=1e-12, msg=f"{name} step {step}"
            )
    # Each step's terms are functions of the weights the steps before left: step k's agreement pins the updates
    # of steps 0..k-1 where they matter. The weights themselves agree within Adam's sign flips: a bias right before
    # an instance norm has a gradient of round-off alone (the norm cancels it), and Adam's first updates are
    # ~lr * sign(gradient) whatever its size; the eager step flips them too from one summation order to another.
    lr = max(group["lr"] for opt in state.optimizers.values() for group in opt.param_groups)
    for name in ("generator", "mapping_network", "style_encoder", "discriminator"):
        ours = eager_module(state.nets[name]).state_dict()
        for key, value in eager_module(eager_state.nets[name]).state_dict().items():
            torch.testing.assert_close(ours[key], value, rtol=0, atol=2 * STEPS * lr, msg=f"{name}.{key}")


def test_compile_mode_is_passed_to_torch_compile_and_off_by_default():
    default = load_config("paper")
    assert default.train.performance.compile is False and default.train.performance.compile_mode == "default"
    graphs = load_config(
        "paper", ["train.performance.compile=true", "train.performance.compile_mode=reduce-overhead"]
    )
    assert (
        Performance.resolve(graphs.train.performance, torch.device("cpu")).compile_mode == "reduce-overhead"
    )
