"""Schedules, EMA, optimiser groups, RNG capture and provenance: the loop's parts without the networks."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from dtgan.config.loss import LossConfig
from dtgan.config.optim import OptimConfig
from dtgan.provenance import collect_provenance
from dtgan.training.ema import EMA_NETS, ema_update, make_ema_nets
from dtgan.training.optimizers import build_optimizers
from dtgan.training.rng import capture_rng_state, restore_rng_state
from dtgan.training.schedules import lambda_ds


def test_lambda_ds_decays_linearly_to_zero_as_a_function_of_the_step():
    cfg = LossConfig(lambda_ds=2.0, ds_decay_steps=100)
    assert lambda_ds(0, cfg) == 2.0
    assert lambda_ds(50, cfg) == pytest.approx(1.0)
    assert lambda_ds(100, cfg) == 0.0
    assert lambda_ds(10_000, cfg) == 0.0
    assert [lambda_ds(s, cfg) for s in range(5)] == [lambda_ds(s, cfg) for s in range(5)]  # pure


class _Mapping(nn.Module):
    """A module with M's parameter-group methods."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(4, 4)
        self.content = nn.Conv2d(4, 4, 1)
        self.noise_strength = nn.Parameter(torch.full((4,), 0.1))

    def content_parameters(self):
        return [*self.content.parameters(), self.noise_strength]

    def noise_strength_parameters(self):
        return [self.noise_strength]


def _nets():
    torch.manual_seed(0)
    return nn.ModuleDict(
        {
            "generator": nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True)),
            "mapping_network": _Mapping(),
            "style_encoder": nn.Linear(4, 2),
            "discriminator": nn.Linear(4, 1),
        }
    )


def test_ema_is_a_lerp_towards_the_trained_weights():
    nets = _nets()
    nets_ema = make_ema_nets(nets, "after_he_init")
    before = {k: v.clone() for k, v in nets_ema.state_dict().items()}
    with torch.no_grad():
        for p in nets.parameters():
            p.add_(1.0)
    ema_update(nets, nets_ema, beta=0.9)
    for key, value in nets_ema.state_dict().items():
        name, rest = key.split(".", 1)
        trained = nets[name].state_dict()[rest]
        torch.testing.assert_close(value, 0.9 * before[key] + 0.1 * trained)
    assert set(nets_ema) == set(EMA_NETS)


def test_ema_before_he_init_starts_from_pytorch_default_init_not_a_copy():
    nets = _nets()
    copied = make_ema_nets(nets, "after_he_init")
    redrawn = make_ema_nets(nets, "before_he_init")
    g = nets["generator"][0].weight
    assert torch.equal(copied["generator"][0].weight, g)
    assert not torch.equal(redrawn["generator"][0].weight, g)
    # PyTorch's default conv init is uniform(+-1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5))
    assert redrawn["generator"][0].weight.abs().max() <= 1 / (3 * 3 * 3) ** 0.5
    # parameters without a reset (noise strengths, IN affine) keep their values
    assert torch.equal(redrawn["mapping_network"].noise_strength, nets["mapping_network"].noise_strength)


def test_optimisers_use_the_a10_learning_rates_of_m_and_l2_weight_decay():
    cfg = OptimConfig(lr=1e-4, mapping_lr=1e-6, mapping_content_lr=1e-5, noise_strength_lr=1e-3)
    opts = build_optimizers(_nets(), cfg)
    assert {g["lr"] for g in opts["generator"].param_groups} == {1e-4}
    lrs = [(g["lr"], len(g["params"])) for g in opts["mapping_network"].param_groups]
    assert lrs == [(1e-6, 2), (1e-5, 2), (1e-3, 1)]  # trunk w+b, content conv w+b, noise strength
    group = opts["discriminator"].param_groups[0]
    assert group["betas"] == (0.0, 0.99) and group["weight_decay"] == 1e-4
    assert type(opts["discriminator"]) is torch.optim.Adam  # L2, not AdamW


def test_optimiser_rates_of_m_default_to_mapping_lr():
    opts = build_optimizers(_nets(), OptimConfig())
    assert {g["lr"] for g in opts["mapping_network"].param_groups} == {1e-6}


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    z_gen = torch.Generator().manual_seed(3)
    random.seed(1), np.random.seed(2), torch.manual_seed(4)
    path = tmp_path / "rng.pt"
    torch.save(capture_rng_state(z_gen), path)
    expected = (random.random(), np.random.rand(), torch.rand(1), torch.randn(1, generator=z_gen))
    restore_rng_state(torch.load(path, weights_only=True), z_gen)
    again = (random.random(), np.random.rand(), torch.rand(1), torch.randn(1, generator=z_gen))
    assert expected == again


def test_provenance_names_seed_git_and_library_versions():
    prov = collect_provenance(seed=11)
    assert prov["seed"] == 11
    assert prov["git_sha"] is None or len(prov["git_sha"]) == 40
    assert prov["libraries"]["torch"] == torch.__version__.split("+")[0] or prov["libraries"]["torch"]
    assert prov["host"]["hostname"]


def test_provenance_reads_git_from_the_checkout_that_holds_platform_dtgan():
    from pathlib import Path

    from dtgan import provenance

    root = provenance._SOURCE_ROOT
    assert root / "platform" / "dtgan" / "provenance.py" == Path(provenance.__file__).resolve()
    if (root / ".git").exists():  # a checkout (a worktree's .git is a file): the sha must be found
        assert len(collect_provenance(seed=1)["git_sha"] or "") == 40


def test_all_reduce_gradients_averages_over_the_process_group(tmp_path):
    import torch.distributed as dist

    from dtgan.training.environment import all_reduce_gradients

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        nets = _nets()
        loss = sum(m.weight.sum() for m in (nets["style_encoder"], nets["discriminator"]))
        loss.backward()
        expected = [p.grad.clone() for p in nets.parameters() if p.grad is not None]
        all_reduce_gradients([nets["style_encoder"], nets["discriminator"]])
        assert all(
            torch.equal(a, p.grad)
            for a, p in zip(expected, [p for p in nets.parameters() if p.grad is not None])
        )
    finally:
        dist.destroy_process_group()


def test_ema_rampup_follows_a_short_run_and_reaches_the_paper_beta():
    from dtgan.config.train import TrainConfig
    from dtgan.training.schedules import ema_beta

    stargan = TrainConfig()
    assert [ema_beta(s, stargan) for s in (0, 100, 10_000)] == [
        0.999
    ] * 3  # the StarGAN quirk stays available
    ramped = TrainConfig(ema_rampup=0.05)
    betas = [ema_beta(s, ramped) for s in range(20_000)]
    assert betas[0] < 1e-5  # the first update copies G: the EMA never sits at its initialisation
    assert abs(betas[99] - 0.5 ** (1 / 5)) < 1e-12 and abs(betas[999] - 0.5 ** (1 / 50)) < 1e-12
    assert all(a <= b for a, b in zip(betas, betas[1:])) and max(betas) == 0.999
    assert betas.index(0.999) == 13_856  # 0.999 has a half-life of 692.8 steps = 5 % of 13,856 steps


def test_ema_with_rampup_is_close_to_the_trained_weights_after_a_short_run():
    from dtgan.config.train import TrainConfig
    from dtgan.training.schedules import ema_beta

    nets = _nets()
    nets_ema = {
        "stargan": make_ema_nets(nets, "before_he_init"),
        "ramped": make_ema_nets(nets, "before_he_init"),
    }
    for step in range(500):  # the weights drift linearly, as a trained network's do
        with torch.no_grad():
            for p in nets.parameters():
                p.add_(0.01)
        ema_update(nets, nets_ema["stargan"], TrainConfig().ema_beta)
        ema_update(nets, nets_ema["ramped"], ema_beta(step, TrainConfig(ema_rampup=0.05)))
    g = nets["generator"][0].weight
    lag = {k: float((g - m["generator"][0].weight).abs().mean()) for k, m in nets_ema.items()}
    # the ramped EMA lags by about its half-life (5 % of 500 steps ~ 25 steps x 0.01), StarGAN's sits near init
    assert lag["ramped"] < 0.5 < lag["stargan"]


def test_preparing_a_run_folder_sweeps_unfinished_checkpoint_writes_with_a_counted_line(tmp_path, caplog):
    import logging

    from dtgan.config import load_config
    from dtgan.training.checkpoint import CHECKPOINT_DIR
    from dtgan.training.run_dir import prepare_run_dir

    checkpoints = tmp_path / "run" / CHECKPOINT_DIR
    checkpoints.mkdir(parents=True)
    leftovers = [checkpoints / ".step_00000004.pt.k2j3h4.tmp", checkpoints / ".step_00000006.pt.zz1.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    kept = checkpoints / "notes.tmp"  # not a checkpoint write: not ours to delete
    kept.write_text("mine")
    with caplog.at_level(logging.INFO):
        prepare_run_dir(tmp_path / "run", load_config("tiny"), resuming=True)
    assert not any(p.exists() for p in leftovers) and kept.exists()
    assert "removed 2 unfinished checkpoint write(s) (.step_00000004.pt.k2j3h4.tmp)" in caplog.text
