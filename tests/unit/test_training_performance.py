"""GPU speed options resolved per device; bf16 autocast leaves D's real pass (R1) and the EMA in fp32."""

import pytest
import torch

from dtgan.config import load_config
from dtgan.errors import ConfigError
from dtgan.losses import Batch
from dtgan.training.environment import Environment
from dtgan.training.performance import Performance
from dtgan.training.ray_train import check_distributed
from dtgan.training.state import build_train_state
from dtgan.training.steps import train_step

K, P, N = 3, 2, 4


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(N, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    return Batch(
        x_real=img(),
        y_org=torch.tensor([0, 1, 2, 0]),
        p_org=torch.tensor([0, 1, 0, 1]),
        x_ref=img(),
        x_ref2=img(),
        y_trg=torch.tensor([1, 2, 0, 1]),
        z_trg=torch.randn(N, 16, generator=g),
        z_trg2=torch.randn(N, 16, generator=g),
    )


def _first_step(*overrides):
    # the plain fp32 path unless an override turns an option on ("auto" would use bf16 on CPUs with native bf16)
    plain = [f"train.performance.{o}=false" for o in ("bf16_autocast", "channels_last", "fused_adam")]
    cfg = load_config("tiny", ["train.batch_size=4", "model.ablation=f", *plain, *overrides])
    state = build_train_state(cfg, K, P, Environment())
    return state, {k: v.float().item() for k, v in train_step(state, _batch(), cfg).items()}


def test_auto_options_are_on_for_cuda_and_for_cpus_that_compute_bf16_natively(monkeypatch):
    from dtgan.training import performance

    cfg = load_config("tiny").train.performance
    # CUDA: bf16 only from compute capability 8.0 (emulated before); channels_last for D and E only (G and M
    # normalise with InstanceNorm, which returns NCHW)
    d_and_e = ("style_encoder", "discriminator")
    for capability, bf16 in (((9, 0), True), ((8, 0), True), ((7, 5), False)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert Performance.resolve(cfg, torch.device("cuda")) == Performance(bf16, d_and_e, True, False)
    forced_on = load_config("tiny", ["train.performance.channels_last=true"]).train.performance
    assert Performance.resolve(forced_on, torch.device("cuda")).channels_last == performance.ALL_NETS
    # (native bf16, AMX) -> bf16 autocast with native bf16; channels_last only with AMX (it cost 11-15 % on an
    # AVX512-BF16 CPU without AMX)
    for native, amx, expected in (
        (False, False, Performance(fused_adam=True)),  # fused Adam on every CPU: one kernel per step
        (True, False, Performance(True, (), True, False)),
        (True, True, Performance(True, performance.ALL_NETS, True, False)),
    ):
        monkeypatch.setattr(performance, "cpu_has_native_bf16", lambda native=native: native)
        monkeypatch.setattr(performance, "cpu_has_amx", lambda amx=amx: amx)
        assert Performance.resolve(cfg, torch.device("cpu")) == expected
    # explicit switches win over what the CPU offers
    forced = load_config("tiny", ["train.performance.bf16_autocast=false"]).train.performance
    assert Performance.resolve(forced, torch.device("cpu")).bf16_autocast is False


def test_bf16_autocast_keeps_the_real_pass_and_r1_in_fp32_and_the_ema_in_fp32():
    _, fp32 = _first_step()
    state, bf16 = _first_step("train.performance.bf16_autocast=true")
    # D's first pass on real images (adv_real, R1) runs outside autocast: identical to the fp32 run.
    assert bf16["d/latent/adv_real"] == fp32["d/latent/adv_real"]
    assert bf16["d/latent/r1"] == fp32["d/latent/r1"]
    # The fakes went through bf16: close, not equal.
    assert bf16["d/latent/adv_fake"] != fp32["d/latent/adv_fake"]
    assert bf16["d/latent/adv_fake"] == pytest.approx(fp32["d/latent/adv_fake"], rel=5e-2)
    assert all(p.dtype == torch.float32 for p in state.nets_ema.parameters())
    assert all(p.dtype == torch.float32 for p in state.nets.parameters())


def test_channels_last_and_fused_adam_do_not_change_the_first_step():
    _, plain = _first_step()
    state, fast = _first_step("train.performance.channels_last=true", "train.performance.fused_adam=true")
    assert state.optimizers["generator"].defaults["fused"] is True
    assert state.nets.generator.from_rgb.weight.is_contiguous(memory_format=torch.channels_last)
    # conv kernels in another memory order sum in another order; later sub-steps see it through Adam
    assert fast == pytest.approx(plain, rel=1e-3, abs=1e-6)


def test_global_batch_must_divide_over_the_workers():
    with pytest.raises(ConfigError, match="train.batch_size=6 is not divisible by distributed.workers=4"):
        check_distributed(load_config("tiny", ["train.batch_size=6", "distributed.workers=4"]))


def test_injected_failure_is_a_test_hook_in_the_environment_and_must_be_a_reported_step(monkeypatch):
    from dtgan.training.ray_train import injected_failure_step

    assert injected_failure_step() is None
    monkeypatch.setenv("DTGAN_TEST_FAIL_AT_STEP", "3")
    assert injected_failure_step() == 3
    with pytest.raises(ConfigError, match="DTGAN_TEST_FAIL_AT_STEP=3 is not a reported step"):
        check_distributed(load_config("tiny", ["train.log_every_steps=10"]))
    check_distributed(load_config("tiny", ["train.log_every_steps=1"]))
    monkeypatch.setenv("DTGAN_TEST_FAIL_AT_STEP", "soon")
    with pytest.raises(ConfigError, match="DTGAN_TEST_FAIL_AT_STEP='soon' must be a step >= 1"):
        injected_failure_step()


def test_fail_at_step_left_the_schema_but_saved_configs_still_load():
    from dtgan.config.loader import config_from_dict

    saved = load_config("tiny").model_dump(mode="json")
    saved["distributed"]["fail_at_step"] = None  # what configs saved by older versions hold
    assert config_from_dict(saved) == load_config("tiny")
    with pytest.raises(
        ConfigError, match="distributed.fail_at_step is no config key any more.*DTGAN_TEST_FAIL_AT_STEP=5"
    ):
        load_config("tiny", ["distributed.fail_at_step=5"])


def test_performance_options_moved_to_train_and_the_old_place_still_works_with_a_warning():
    from dtgan.config.loader import config_from_dict

    with pytest.warns(FutureWarning, match="distributed.performance is deprecated: .* train.performance"):
        old = load_config(
            "tiny", ["distributed.performance.bf16_autocast=false", "distributed.performance.compile=true"]
        )
    assert old == load_config(
        "tiny", ["train.performance.bf16_autocast=false", "train.performance.compile=true"]
    )
    assert "performance" not in old.distributed.model_dump()
    # a checkpoint's config from an older version loads as the same config
    saved = old.model_dump(mode="json")
    saved["distributed"]["performance"] = saved["train"].pop("performance")
    with pytest.warns(FutureWarning):
        assert config_from_dict(saved) == old
    with pytest.raises(ConfigError, match="distributed.performance and train.performance are both set"):
        load_config("tiny", ["distributed.performance.compile=true", "train.performance.compile=false"])


def test_ema_nets_share_the_memory_layout_of_the_nets_they_follow_and_their_update_is_the_lerp():
    from dtgan.training.ema import ema_update

    cfg = load_config("tiny", ["train.batch_size=4", "train.performance.channels_last=true"])
    state = build_train_state(cfg, K, P, Environment())
    for name, module in state.nets_ema.items():
        for p_ema, p in zip(module.parameters(), state.nets[name].parameters(), strict=True):
            assert p_ema.stride() == p.stride(), (
                name
            )  # the multi-tensor kernels' fast path wants equal layouts
    before = [p.clone() for p in state.nets_ema.parameters()]
    with torch.no_grad():
        for p in state.nets.parameters():
            p.add_(0.5)
    ema_update(state.nets, state.nets_ema, beta=0.75)
    trained = [p for name in state.nets_ema for p in state.nets[name].parameters()]
    for old, new, p in zip(before, state.nets_ema.parameters(), trained, strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * p)
