"""``dtgan train`` end to end on the embedded benchmark at 32 px: run folder, samples, resume, NaN stop."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.data.vocab import Vocab
from dtgan.errors import TrainingDiverged
from dtgan.training.checkpoint import list_checkpoints, load_inference_nets
from dtgan.training.environment import Environment
from dtgan.training.loop import train
from dtgan.training.reporter import Reporter

BENCHMARK_SCALE = 0.02  # ~500 images: 168 gan_train, 330 gan_holdout normals


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "benchmark.parquet"
    synthesize_benchmark(str(path), size=32, scale=BENCHMARK_SCALE, seed=0)
    return str(path)


def _overrides(benchmark, out_dir, **train):
    base = {
        "total_steps": 2,
        "batch_size": 4,
        "sample_every_steps": 2,
        "checkpoint_every_steps": 2,
        "log_every_steps": 1,
        **train,
    }
    return [
        f"data.path={benchmark}",
        f"train.out_dir={out_dir}",
        *(f"train.{k}={v}" for k, v in base.items()),
    ]


def _dtgan(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dtgan", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_one_worker_trains_in_this_process_as_a_study_trial_does(benchmark, tmp_path):
    # distributed.workers=1 means the same everywhere (training.launch): no Ray, the single-process run folder
    args = ["train", "-c", "smoke", "--workers", "1", "--storage", str(tmp_path / "ray")]
    for o in _overrides(benchmark, tmp_path):
        args += ["-o", o]
    done = _dtgan(*args)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "smoke-g-seed777"
    assert "trained 2 steps" in done.stdout and str(run / "checkpoints" / "step_00000002.pt") in done.stdout
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt"]
    assert not (tmp_path / "ray").exists()  # no Ray Train storage


def test_train_cli_writes_the_run_folder_and_resumes(benchmark, tmp_path):
    args = ["train", "-c", "smoke"]
    for o in _overrides(benchmark, tmp_path):
        args += ["-o", o]
    done = _dtgan(*args)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "smoke-g-seed777"
    assert "trained 2 steps" in done.stdout and "images/s" in done.stdout
    assert (run / "config.yaml").is_file()
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["seed"] == 777 and "torch" in provenance["libraries"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2] and lines[-1]["checkpoint_path"].endswith("step_00000002.pt")
    assert {
        "train/g/latent/cyc",
        "train/d/ref/r1",
        "train/images_per_s",
        "train/step_ms",
        "train/lambda_ds",
    } <= set(lines[0])
    # 8 held-out normal sources x (source + 3 target domains), 32 px tiles with 1 px padding
    assert Image.open(run / "samples" / "step_00000002_latent.png").size == (4 * 33 + 1, 8 * 33 + 1)
    assert Image.open(run / "samples" / "step_00000002_reference.png").size == (4 * 33 + 1, 9 * 33 + 1)

    again = _dtgan(*args)  # the folder holds a run: refuse to mix
    assert (
        again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    )

    resumed = _dtgan(*args, "-o", "train.total_steps=3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002.pt", "step_00000003.pt"]
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


def test_resume_without_a_checkpoint_is_a_one_line_error(benchmark, tmp_path):
    args = ["train", "-c", "smoke", "--resume"]
    for o in _overrides(benchmark, tmp_path):
        args += ["-o", o]
    done = _dtgan(*args)
    assert done.returncode == 2 and "nothing to resume" in done.stderr


class _Collect(Reporter):
    def __init__(self):
        self.calls = []

    def report(self, step, metrics, checkpoint_path):
        self.calls.append((step, checkpoint_path))


def test_train_2n_equals_train_n_then_resume_n_bitwise(benchmark, tmp_path):
    straight = train(
        load_config("smoke", _overrides(benchmark, tmp_path / "a", total_steps=4)), reporter=_Collect()
    )
    config = load_config("smoke", _overrides(benchmark, tmp_path / "b", total_steps=2))
    train(config, reporter=_Collect())
    resumed = train(
        load_config("smoke", _overrides(benchmark, tmp_path / "b", total_steps=4)),
        reporter=_Collect(),
        resume=True,
    )
    a = torch.load(straight.checkpoint_path, weights_only=True)
    b = torch.load(resumed.checkpoint_path, weights_only=True)
    for part in ("nets", "nets_ema"):
        for name in a[part]:
            for key, value in a[part][name].items():
                assert torch.equal(value, b[part][name][key]), f"{part}.{name}.{key}"
    assert a["loaders"] == b["loaders"] and torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_load_inference_nets_gives_the_ema_networks_of_the_latest_checkpoint(benchmark, tmp_path):
    result = train(load_config("smoke", _overrides(benchmark, tmp_path)), reporter=_Collect())
    nets = load_inference_nets(result.run_dir)
    saved = torch.load(result.checkpoint_path, weights_only=True)["nets_ema"]["generator"]
    assert nets.step == 2 and isinstance(nets.vocab, Vocab) and nets.vocab.defects[0] == "normal"
    assert not nets.generator.training and not any(p.requires_grad for p in nets.generator.parameters())
    assert all(torch.equal(v, nets.generator.state_dict()[k]) for k, v in saved.items())
    assert nets.config.model.img_size == 32


def _nan_after(calls: int):
    """prepare_model hook: D's logits become NaN from its ``calls``-th forward on (6 D calls per step)."""
    count = {"n": 0}

    def hook(module, inputs, output):
        count["n"] += 1
        if count["n"] > calls:
            return output._replace(logits=output.logits * float("nan"))
        return output

    def prepare(module):
        if type(module).__name__ == "Discriminator":
            module.register_forward_hook(hook)
        return module

    return prepare


def test_a_nan_loss_stops_training_naming_term_and_step_and_keeps_the_checkpoint(benchmark, tmp_path):
    config = load_config("smoke", _overrides(benchmark, tmp_path, total_steps=5))
    env = Environment(prepare_model=_nan_after(2 * 6))
    with pytest.raises(
        TrainingDiverged,
        match=r"'d/latent/adv_real' became nan at step 3; the last good checkpoint is .*step_00000002.pt",
    ):
        train(config, reporter=_Collect(), env=env)
    assert [p.name for p in list_checkpoints(tmp_path / "smoke-g-seed777")] == ["step_00000002.pt"]


def test_a_resume_rewinds_the_metrics_log_to_the_checkpoint(benchmark, tmp_path):
    # A run stopped after its last checkpoint (here: step 4's file never written) had logged steps it logs again
    # on resuming, and a crash can cut its last line short: the log keeps each step once.
    config = load_config("smoke", _overrides(benchmark, tmp_path, total_steps=4))
    run = train(config).run_dir
    list_checkpoints(run)[-1].unlink()
    with (run / "metrics.jsonl").open("a") as log:
        log.write('{"step": 5, "train/g/lat')
    train(config, resume=True)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
