"""Resume anywhere: per-rank RNG states, CUDA states of N visible devices resumed with M (or none), the optimiser's
moments across a memory-layout change, and precision changes across a resume. Checkpoints are built on the CPU."""

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import torch

from dtgan.config import load_config
from dtgan.losses import Batch
from dtgan.training.checkpoint import (
    match_parameter_layout,
    read_checkpoint,
    restore_train_state,
    save_checkpoint,
)
from dtgan.training.environment import Environment, gather_from_ranks
from dtgan.training.rng import capture_rng_state, cuda_state_for, rank_seed, seed_everything
from dtgan.training.state import build_train_state
from dtgan.training.steps import train_step

K, P, N = 3, 2, 4
VOCAB = SimpleNamespace(products=("a", "b"), defects=("normal", "scratch", "spot"))
PLAIN = [
    "train.performance.bf16_autocast=false",
    "train.performance.channels_last=false",
    "train.performance.fused_adam=false",
]


def _config(*overrides):
    return load_config("tiny", ["train.batch_size=4", *PLAIN, *overrides])


def _batch(z_generator, seed, latent_dim=16):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(N, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    return Batch(
        x_real=img(),
        y_org=torch.tensor([0, 1, 2, 0]),
        p_org=torch.tensor([0, 1, 0, 1]),
        x_ref=img(),
        x_ref2=img(),
        y_trg=torch.tensor([1, 2, 0, 1]),
        z_trg=torch.randn(N, latent_dim, generator=z_generator),
        z_trg2=torch.randn(N, latent_dim, generator=z_generator),
    )


def _run(cfg, steps, state=None):
    state = state or build_train_state(cfg, K, P, Environment())
    for _ in range(steps):
        train_step(state, _batch(state.z_generator, state.step), cfg)
    return state


def _rank_state(seed, rank, z_generator):
    """The RNG states rank ``rank`` holds after build_train_state (its own noise seed, the shared z stream)."""
    seed_everything(rank_seed(seed, rank))
    return capture_rng_state(z_generator)


def _resume(cfg, path, rank=0):
    state = build_train_state(cfg, K, P, Environment(rank=rank))
    restore_train_state(read_checkpoint(path), state, cfg, VOCAB, path, rank=rank)
    return state


def test_each_rank_restores_its_own_rng_state_and_a_new_rank_gets_distinct_noise(tmp_path):
    cfg = _config()
    state = _run(cfg, 1)
    z = state.z_generator
    per_rank = [_rank_state(777, rank, z) for rank in range(2)]
    path = save_checkpoint(tmp_path / "c.pt", state, cfg, VOCAB, {}, per_rank)

    draws = {}
    for rank in range(3):  # written by two ranks, resumed by three
        resumed = _resume(cfg, path, rank)
        draws[rank] = (torch.rand(3), torch.randn(2, generator=resumed.z_generator))
    for rank in range(2):
        seed_everything(rank_seed(777, rank))
        assert torch.equal(draws[rank][0], torch.rand(3)), rank  # rank r continues rank r's noise
    assert not torch.equal(draws[0][0], draws[1][0])
    assert not torch.equal(draws[2][0], draws[0][0]) and not torch.equal(draws[2][0], draws[1][0])
    assert all(torch.equal(draws[r][1], draws[0][1]) for r in range(3))  # one shared z stream
    again = _resume(cfg, path, 2)
    assert torch.equal(torch.rand(3), draws[2][0])  # a retry of the same resume draws the same noise
    del again


def test_a_checkpoint_with_four_cuda_rng_states_resumes_on_the_cpu_and_on_one_device(tmp_path):
    cfg = _config()
    state = _run(cfg, 1)
    rng = capture_rng_state(state.z_generator)
    four = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]
    rng["cuda"] = four  # the older form: one state per visible device (torch.cuda.get_rng_state_all)
    path = save_checkpoint(tmp_path / "c.pt", state, cfg, VOCAB, {}, [rng])
    payload = read_checkpoint(path)
    del payload["rng_per_rank"]  # as an older dtgan wrote it
    torch.save(payload, path)

    resumed = _resume(cfg, path)  # on the CPU: no CUDA state is touched, nothing raises
    assert resumed.step == 1
    saved = read_checkpoint(path)["rng"]
    assert cuda_state_for(saved, torch.device("cpu")) is None
    assert torch.equal(cuda_state_for(saved, torch.device("cuda", 0)), four[0])  # one visible device
    assert torch.equal(cuda_state_for(saved, torch.device("cuda", 3)), four[3])
    assert cuda_state_for(saved, torch.device("cuda", 5)) is None  # more devices than written: left as seeded
    ours = dict(saved, cuda_device=four[2])  # the current form: the state of the rank's own device
    assert torch.equal(cuda_state_for(ours, torch.device("cuda", 0)), four[2])


def test_checkpoints_store_one_rng_entry_per_rank_and_no_state_of_other_devices(tmp_path):
    cfg = _config()
    state = _run(cfg, 1)
    payload = read_checkpoint(save_checkpoint(tmp_path / "c.pt", state, cfg, VOCAB, {}))
    assert len(payload["rng_per_rank"]) == 1 and "cuda" not in payload["rng"]
    assert "cuda_device" not in payload["rng"]  # a CPU run has no CUDA state to keep


def test_gather_from_ranks_collects_one_object_per_rank_over_a_process_group(tmp_path):
    assert gather_from_ranks({"a": 1}) == [{"a": 1}]  # one process, no group
    script = textwrap.dedent(
        f"""
        import sys, torch, torch.distributed as dist
        from dtgan.training.environment import gather_from_ranks
        rank = int(sys.argv[1])
        dist.init_process_group("gloo", init_method="file://{tmp_path / "store"}", rank=rank, world_size=2)
        got = gather_from_ranks({{"rank": rank, "t": torch.full((2,), rank)}})
        assert [g["rank"] for g in got] == [0, 1] and torch.equal(got[1]["t"], torch.ones(2, dtype=torch.long))
        dist.destroy_process_group()
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(r)]) for r in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]


def _moments(state):
    return {
        (name, i): opt.state[p]
        for name, opt in state.optimizers.items()
        for i, p in enumerate(p for g in opt.param_groups for p in g["params"])
    }


def _layouts_match(state):
    return all(
        slot.stride() == p.stride()
        for opt in state.optimizers.values()
        for g in opt.param_groups
        for p in g["params"]
        for slot in opt.state[p].values()
        if slot.shape == p.shape
    )


def test_adam_moments_take_the_parameters_layout_when_channels_last_changes_across_a_resume(tmp_path):
    for before, after in (("true", "false"), ("false", "true")):
        written = _config(f"train.performance.channels_last={before}")
        path = save_checkpoint(tmp_path / f"{before}.pt", _run(written, 1), written, VOCAB, {})
        saved = read_checkpoint(path)["optimizers"]["discriminator"]["state"]
        assert any(not v.is_contiguous() for s in saved.values() for v in s.values() if v.dim() == 4) == (
            before == "true"
        )  # torch.load keeps the strides the moments were written with
        straight = _run(written, 1)
        expected = train_step(straight, _batch(straight.z_generator, 1), written)
        cfg = _config(f"train.performance.channels_last={after}", "train.performance.fused_adam=true")
        resumed = _resume(cfg, path)  # the global RNGs continue from the checkpoint (after the straight run)
        assert _layouts_match(resumed), (before, after)
        got = train_step(resumed, _batch(resumed.z_generator, 1), cfg)  # fused Adam on the converted moments
        for k, v in expected.items():  # same maths in another memory order (as the first step's test)
            assert torch.allclose(got[k], v, rtol=1e-3, atol=1e-6), k


def test_match_parameter_layout_keeps_values_and_leaves_matching_moments_alone():
    conv = torch.nn.Conv2d(4, 4, 3).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(conv.parameters())
    conv(torch.randn(1, 4, 5, 5)).sum().backward()
    opt.step()
    moment = opt.state[conv.weight]["exp_avg"]
    contiguous = moment.contiguous()
    opt.state[conv.weight]["exp_avg"] = contiguous
    bias_moment = opt.state[conv.bias]["exp_avg"]
    match_parameter_layout(opt)
    converted = opt.state[conv.weight]["exp_avg"]
    assert converted.stride() == conv.weight.stride() and torch.equal(converted, moment)
    assert opt.state[conv.bias]["exp_avg"] is bias_moment


def test_precision_settings_may_change_across_a_resume(tmp_path):
    written = _config("train.performance.bf16_autocast=true")
    path = save_checkpoint(tmp_path / "c.pt", _run(written, 1), written, VOCAB, {})
    for bf16 in ("false", "true"):
        resumed = _run(_config(f"train.performance.bf16_autocast={bf16}"), 1, _resume(written, path))
        assert resumed.step == 2
        assert all(
            v.dtype == torch.float32 for s in _moments(resumed).values() for v in s.values() if v.dim()
        )
        assert all(torch.isfinite(p).all() for p in resumed.nets.parameters())
