"""One iteration on the tiny real networks: which networks each step updates, determinism, checkpoints, NaN stop."""

from types import SimpleNamespace

import pytest
import torch

from dtgan.config import load_config
from dtgan.errors import CheckpointError, TrainingDiverged
from dtgan.losses import Batch
from dtgan.training.checkpoint import (
    CHECKPOINT_DIR,
    INFERENCE_KEYS,
    checkpoint_name,
    checkpoint_path,
    checkpoint_step,
    checkpoints_in,
    inference_payload,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
    restore_train_state,
    run_dir_of,
    save_checkpoint,
)
from dtgan.training.environment import Environment
from dtgan.training.loop import TermMeter
from dtgan.training.state import build_train_state
from dtgan.training.steps import d_step, g_step, train_step

K, P, N = 3, 2, 4
VOCAB = SimpleNamespace(products=("a", "b"), defects=("normal", "scratch", "spot"))


def _config(*overrides):
    return load_config("tiny", ["train.batch_size=4", *overrides])


def _batch(z_generator, seed, latent_dim=_config().model.latent_dim):
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


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_each_step_updates_only_its_networks():
    cfg = _config()
    state = build_train_state(cfg, K, P, Environment())
    batch = _batch(state.z_generator, 0)
    expected = {
        "d": {"discriminator"},
        "g_latent": {"generator", "mapping_network", "style_encoder"},
        "g_reference": {"generator"},
    }
    steps = {
        "d": lambda: d_step(state, batch, "latent", cfg),
        "g_latent": lambda: g_step(state, batch, "latent", cfg),
        "g_reference": lambda: g_step(state, batch, "reference", cfg),
    }
    for name, run in steps.items():
        before = {n: _snapshot(m) for n, m in state.nets.items()}
        run()
        assert {n for n, m in state.nets.items() if _changed(before[n], m)} == expected[name], name
        assert all(p.requires_grad for p in state.nets.parameters())  # freezing is undone


def test_train_step_advances_the_step_and_updates_the_ema():
    cfg = _config()
    state = build_train_state(cfg, K, P, Environment())
    ema_before = _snapshot(state.nets_ema)
    terms = train_step(state, _batch(state.z_generator, 0), cfg)
    assert state.step == 1
    assert _changed(ema_before, state.nets_ema)
    assert {"d/latent/r1", "d/ref/adv_fake", "g/latent/cyc", "g/ref/ds", "g/ref/total"} <= set(terms)


def _run(cfg, steps, state=None, start=0):
    state = state or build_train_state(cfg, K, P, Environment())
    for i in range(start, start + steps):
        train_step(state, _batch(state.z_generator, i), cfg)
    return state


def test_two_runs_with_the_same_seed_give_identical_weights():
    cfg = _config()
    a, b = _run(cfg, 2), _run(cfg, 2)
    assert all(torch.equal(x, y) for x, y in zip(a.nets.state_dict().values(), b.nets.state_dict().values()))
    c = _run(_config("train.seed=5"), 2)
    assert not all(
        torch.equal(x, y) for x, y in zip(a.nets.state_dict().values(), c.nets.state_dict().values())
    )


def test_checkpoint_then_resume_is_bitwise_identical(tmp_path):
    cfg = _config()
    straight = _run(cfg, 2)
    first = _run(cfg, 1)
    path = save_checkpoint(tmp_path / "step.pt", first, cfg, VOCAB, {"sources": {"epoch": 0}})
    resumed = build_train_state(cfg, K, P, Environment())
    loaders = restore_train_state(read_checkpoint(path), resumed, cfg, VOCAB, path)
    assert loaders == {"sources": {"epoch": 0}} and resumed.step == 1
    _run(cfg, 1, state=resumed, start=1)  # mapping noise and z come from the restored RNG states
    for part in ("nets", "nets_ema"):
        for (k, x), y in zip(
            getattr(straight, part).state_dict().items(), getattr(resumed, part).state_dict().values()
        ):
            assert torch.equal(x, y), f"{part}.{k}"


def test_checkpoint_loads_with_weights_only(tmp_path):
    cfg = _config()
    path = save_checkpoint(tmp_path / "c.pt", _run(cfg, 1), cfg, VOCAB, {})
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == 1 and payload["step"] == 1
    assert payload["vocab"] == {"products": ["a", "b"], "defects": ["normal", "scratch", "spot"]}
    assert payload["config"]["model"]["img_size"] == 32
    assert set(payload["nets_ema"]) == {"generator", "mapping_network", "style_encoder"}


def test_checkpoint_names_steps_and_listing_are_one_format(tmp_path):
    run = tmp_path / "run"
    assert checkpoint_name(120) == "step_00000120.pt"
    assert (
        checkpoint_path(run, 120)
        == run / CHECKPOINT_DIR / "step_00000120.pt"
        == run / "checkpoints" / "step_00000120.pt"
    )
    assert checkpoint_step(checkpoint_path(run, 120)) == 120 and checkpoint_step("step_00000000.pt") == 0
    for bad in ("step_x.pt", "step_00000001.pth", "latest.pt", "step_.pt"):
        with pytest.raises(CheckpointError, match="not a checkpoint file name"):
            checkpoint_step(bad)
    assert list_checkpoints(run) == [] and latest_checkpoint(run) is None and checkpoints_in(run) == []
    for step in (1000, 20, 300):
        checkpoint_path(run, step).parent.mkdir(parents=True, exist_ok=True)
        checkpoint_path(run, step).write_bytes(b"")
    (run / CHECKPOINT_DIR / ".step_00000400.pt.abc.tmp").write_bytes(b"")  # an unfinished write
    (run / CHECKPOINT_DIR / "notes.pt").write_bytes(b"")
    assert [checkpoint_step(p) for p in list_checkpoints(run)] == [20, 300, 1000]
    assert checkpoints_in(run / CHECKPOINT_DIR) == list_checkpoints(run)
    assert latest_checkpoint(run) == checkpoint_path(run, 1000)
    assert run_dir_of(checkpoint_path(run, 20)) == run  # <run>/checkpoints/step_X.pt
    assert run_dir_of(tmp_path / "loose" / "step_00000020.pt") == tmp_path / "loose"  # a file elsewhere


def test_inference_payload_keeps_the_ema_nets_and_what_explains_them(tmp_path):
    cfg = _config()
    path = save_checkpoint(tmp_path / "c.pt", _run(cfg, 1), cfg, VOCAB, {})
    payload = read_checkpoint(path)
    slim = inference_payload(payload, path)
    assert tuple(slim) == INFERENCE_KEYS and set(INFERENCE_KEYS) < set(payload)
    assert "nets" not in slim and "optimizers" not in slim
    with pytest.raises(
        CheckpointError, match=r"c.pt lacks vocab, nets_ema; is it a dtgan training checkpoint"
    ):
        inference_payload({k: v for k, v in payload.items() if k not in ("vocab", "nets_ema")}, path)


def test_checkpoint_from_another_model_configuration_is_refused(tmp_path):
    cfg = _config()
    path = save_checkpoint(tmp_path / "c.pt", _run(cfg, 1), cfg, VOCAB, {})
    other = _config("model.ablation=b")
    state = build_train_state(other, K, P, Environment())
    with pytest.raises(
        CheckpointError, match=r"another model configuration \(model.ablation: saved 'g' vs 'b'"
    ):
        restore_train_state(read_checkpoint(path), state, other, VOCAB, path)


def test_missing_or_corrupt_checkpoint_gives_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable dtgan checkpoint") as info:
        read_checkpoint(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="no checkpoints"):
        read_checkpoint(tmp_path)


def _terms(**values):
    return {name.replace("__", "/"): torch.tensor(v) for name, v in values.items()}


def test_non_finite_loss_names_the_term_and_the_step(tmp_path):
    meter = TermMeter()
    for step in range(15, 17):
        meter.add(_terms(d__latent__total=1.0, g__latent__cyc=0.5, g__ref__cyc=0.5), step, 0.1)
    meter.raise_if_diverged(None)  # all finite so far
    meter.add(_terms(d__latent__total=1.0, g__latent__cyc=float("nan"), g__ref__cyc=0.5), 17, 0.1)
    meter.add(_terms(d__latent__total=1.0), 18, 0.1)  # another set of terms (lazy R1): its own group
    meter.add(_terms(d__latent__total=float("inf"), g__latent__cyc=0.5, g__ref__cyc=float("inf")), 19, 0.1)
    with pytest.raises(
        TrainingDiverged, match=r"'g/latent/cyc' became nan at step 17; the last good checkpoint is .*c.pt"
    ):
        meter.raise_if_diverged(tmp_path / "c.pt")
    meter.reset()
    meter.add(_terms(d__latent__total=float("inf"), g__ref__cyc=float("inf")), 3, 0.1)
    with pytest.raises(TrainingDiverged, match=r"'d/latent/total' became inf at step 3; no checkpoint"):
        meter.raise_if_diverged(None)  # within a step, the first term in D, D, G, G order


def test_term_meter_reads_nothing_back_per_step_and_averages_each_term_over_its_steps(monkeypatch):
    meter = TermMeter()

    def no_host_read(*args, **kwargs):
        raise AssertionError("a host read in TermMeter.add")

    with monkeypatch.context() as patch:
        for read in ("item", "tolist", "__bool__", "cpu", "numpy"):
            patch.setattr(torch.Tensor, read, no_host_read)
        meter.add(_terms(d__r1=2.0, d__total=1.0), 1, 0.5)
        meter.add(_terms(d__total=3.0), 2, 0.5)
        meter.add(_terms(d__r1=4.0, d__total=5.0), 3, 0.5)
    metrics = meter.flush(images_per_step=8)
    assert metrics["train/d/r1"] == 3.0 and metrics["train/d/total"] == 3.0
    assert metrics["train/images_per_s"] == 16.0 and meter.steps == 0
