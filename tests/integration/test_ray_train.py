"""Ray Train on 2 CPU workers (gloo): same losses as one process, recovery from a failure, CLI resume."""

from __future__ import annotations

import json
import shutil
import tempfile
import time

import pytest

from dtgan.cli.main import main
from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TOTAL_STEPS, FAIL_AT_STEP = 6, 5
# DT-GAN without mapping noise (step f): noise is the one random stream a rank draws for itself.
OVERRIDES = [
    "model.ablation=f",
    "train.batch_size=4",
    f"train.total_steps={TOTAL_STEPS}",
    "train.log_every_steps=1",
    "train.checkpoint_every_steps=2",
    "train.sample_every_steps=6",
    "train.keep_checkpoints=2",
    # fp32 on every CPU: "auto" turns bf16 autocast on where the CPU has native bf16, and the worker-vs-single
    # tolerances below are float32 summation-order ones
    "train.performance.bf16_autocast=false",
    "train.performance.channels_last=false",
]
WALL_S: dict[str, float] = {}  # measured wall times, printed at the end of the module


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("ray-data") / "benchmark.parquet")
    synthesize_benchmark(path, size=32, scale=0.05, seed=1)
    return path


@pytest.fixture(scope="module")
def ray_instance():
    """One private local Ray for the module (never a machine-wide `ray stop`)."""
    temp_dir = tempfile.mkdtemp(prefix="dtgan-ray-", dir="/tmp")
    ray.init(
        address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", _temp_dir=temp_dir
    )
    yield
    ray.shutdown()
    print("wall times (s):", json.dumps({k: round(v, 1) for k, v in WALL_S.items()}))
    shutil.rmtree(temp_dir, ignore_errors=True)


def _config(data_path, *extra):
    return load_config("tiny", [f"data.path={data_path}", *OVERRIDES, *extra])


def _fit(name, config, storage):
    from dtgan.training.ray_train import fit_distributed

    started = time.perf_counter()
    result = fit_distributed(config, run_name=name, storage_path=str(storage), resume="auto")
    WALL_S[name] = time.perf_counter() - started
    return result


def _losses(record):
    return {k: v for k, v in record.items() if k.startswith("train/") and ("/d/" in k or "/g/" in k)}


def _read_history(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(ray_instance, data_path, tmp_path_factory):
    """A 2-worker run without failures: the reference of the tests below."""
    storage = tmp_path_factory.mktemp("storage")
    return _fit("uninterrupted", _config(data_path, "distributed.workers=2"), storage)


def test_two_worker_run_matches_the_single_process_loss_curve(uninterrupted, data_path, tmp_path):
    from dtgan.training.loop import train

    config = _config(data_path, f"train.out_dir={tmp_path}", "train.run_name=single")
    started = time.perf_counter()
    single = train(config)
    WALL_S["single_process"] = time.perf_counter() - started
    single_history = _read_history(single.run_dir / "metrics.jsonl")
    distributed_history = uninterrupted.metrics_history

    assert [r["step"] for r in distributed_history] == list(range(1, TOTAL_STEPS + 1))
    assert uninterrupted.step == TOTAL_STEPS
    # The union of the two workers' shards (images, augmentation seeds and z rows) is the single-process
    # batch and gradients are averaged over the workers, so step 1 (initial nets; the later sub-steps after
    # one Adam update of D, then of G) agrees up to float summation order (measured: rel. <= 1.4e-6). Adam's
    # first updates are ~lr * sign(g), so 1e-7 differences of near-zero gradients become lr-sized ones
    # (measured: rel. up to 4e-5 at step 2, median 2e-5 at step 3 and 5e-3 at step 6, worst term 7%):
    # later steps are checked as a trajectory. Within step 1 the same holds in small: the D sub-steps see the
    # initial nets (measured with the layout-aware norms: rel. <= 7.5e-7), G's reference sub-step comes after three
    # Adam updates (D latent, D reference, G latent) and differs more (measured: rel. up to 1.6e-5, g/ref/adv).
    expected, got = _losses(single_history[0]), _losses(distributed_history[0])
    assert expected.keys() == got.keys()
    for key in expected:
        after_three_updates = key.startswith("train/g/ref/")
        rel = 1e-4 if after_three_updates else 1e-5
        assert got[key] == pytest.approx(expected[key], rel=rel, abs=1e-7), key
    for one, two in zip(single_history[1:], distributed_history[1:]):
        expected, got = _losses(one), _losses(two)
        relative = sorted(abs(got[k] - expected[k]) / max(abs(expected[k]), 1e-6) for k in expected)
        assert relative[len(relative) // 2] < 2e-2 and relative[-1] < 0.2, (one["step"], relative[-3:])


def test_injected_worker_failure_is_recovered_with_the_same_history(
    uninterrupted, data_path, tmp_path, monkeypatch
):
    config = _config(data_path, "distributed.workers=2", "distributed.max_failures=1")
    monkeypatch.setenv("DTGAN_TEST_FAIL_AT_STEP", str(FAIL_AT_STEP))
    recovered = _fit("recovered", config, tmp_path)
    monkeypatch.delenv("DTGAN_TEST_FAIL_AT_STEP")

    assert recovered.step == uninterrupted.step == TOTAL_STEPS
    assert [r["step"] for r in recovered.metrics_history] == list(range(1, TOTAL_STEPS + 1))
    # Resumed from step 4 with the same RNG, loader positions and schedules: steps 5-6 are recomputed exactly.
    for got, expected in zip(recovered.metrics_history, uninterrupted.metrics_history):
        assert _losses(got) == pytest.approx(_losses(expected), rel=1e-6), got["step"]
    local = _read_history(recovered.run_dir / "metrics.jsonl")
    assert [r["step"] for r in local] == list(range(1, TOTAL_STEPS + 1))  # rewound, no duplicated step 5


def test_cli_resume_on_the_same_storage_continues_from_the_last_checkpoint(
    uninterrupted, data_path, tmp_path, monkeypatch
):
    args = [
        "train",
        "-c",
        "tiny",
        "-o",
        f"data.path={data_path}",
        *(a for o in OVERRIDES for a in ("-o", o)),
        "-o",
        "train.run_name=cli",
        "--workers",
        "2",
        "--storage",
        str(tmp_path),
    ]
    started = time.perf_counter()
    monkeypatch.setenv("DTGAN_TEST_FAIL_AT_STEP", str(FAIL_AT_STEP))
    failed = main([*args, "-o", "distributed.max_failures=0"])
    monkeypatch.delenv("DTGAN_TEST_FAIL_AT_STEP")
    WALL_S["cli_failed_at_step_5"] = time.perf_counter() - started
    assert failed == 1
    assert sorted(p.name for p in (tmp_path / "cli").glob("checkpoint_0*")) == [
        "checkpoint_00000002",
        "checkpoint_00000004",
    ]
    assert main(args) == 2  # without --resume an existing run is not overwritten

    started = time.perf_counter()
    assert main([*args, "--resume"]) == 0
    WALL_S["cli_resumed"] = time.perf_counter() - started

    history = _read_history(tmp_path / "cli" / "checkpoint_00000006" / "metrics.jsonl")
    assert [r["step"] for r in history] == list(range(1, TOTAL_STEPS + 1))
    for got, expected in zip(history, uninterrupted.metrics_history):
        assert _losses(got) == pytest.approx(_losses(expected), rel=1e-6), got["step"]
