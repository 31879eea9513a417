"""The benchmark scripts run on a CPU at tiny sizes and print JSON that names the device and the GPU targets
they could not measure (no timing is asserted: targets are checked by reading the JSON, never by tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
NOT_MEASURED = "not measured here"


def _run(script: str, *args: str, timeout: int = 300) -> dict:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--device", "cpu", "--threads", "1", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout)


def test_train_step_times_lazy_r1_over_whole_cycles_and_compares_with_another_checkouts_plain_step():
    result = _run(
        "train_step.py",
        "--preset",
        "tiny",
        "--batch-sizes",
        "2",
        "--modes",
        "plain+lazy_r1",
        "--r1-every",
        "2",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--before",
        str(BENCHMARKS.parent / "platform"),  # this checkout stands in for an older one
        "--profile",
    )
    (row,) = result["runs"]
    assert row["plain+lazy_r1"]["iterations_per_timed_call"] == 2
    shares = row["plain+lazy_r1"]["profile_self_cpu_share"]  # where one whole R1 cycle's time went
    assert (
        shares["convolutions"] > 0
        and shares["Adam"] > 0
        and sum(shares.values()) == pytest.approx(1, abs=0.01)
    )
    assert row["before_plain"]["cpu_ms_per_iteration_median"] > 0
    assert row["plain+lazy_r1_over_before_plain"] > 0
    target = result["targets"]["cpu_best_over_before_plain"]
    assert target["target"] == 2.5 and target["mode"] == "plain+lazy_r1"


def test_train_step_compares_plain_with_auto_and_says_the_gpu_targets_were_not_measured():
    result = _run(
        "train_step.py",
        "--preset",
        "tiny",
        "--ablation",
        "g",
        "--batch-sizes",
        "2",
        "--modes",
        "plain,auto,channels_last",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--count-flops",
    )
    env = result["environment"]
    assert env["device"] == "cpu" and env["date_utc"] and env["cpu_capability"]
    (row,) = result["runs"]
    plain = row["plain"]
    assert row["batch_size"] == 2 and "fast" not in row
    assert plain["wall_ms_per_iteration_median"] > 0 and plain["cpu_ms_per_iteration_median"] > 0
    assert plain["images_per_s"] > 0 and plain["gflop_per_iteration"] > 0
    all_nets = ["generator", "mapping_network", "style_encoder", "discriminator"]
    switches = {
        k: v for k, v in plain["options"].items() if k != "compile_mode"
    }  # the mode compile would use
    assert not any(switches.values()) and row["channels_last"]["options"]["channels_last"] == all_nets
    # "auto" resolves to what pays on this CPU: bf16 where bf16 is native, channels_last only with AMX tiles
    native = bool(env["cpu_amx_tile"] or env["cpu_avx512_bf16"])
    assert row["auto"]["options"]["bf16_autocast"] is native
    assert bool(row["auto"]["options"]["channels_last"]) is bool(env["cpu_amx_tile"])
    assert row["auto_speedup"] > 0 and row["channels_last_speedup"] > 0
    assert result["targets"]["paper_100k_iterations_hours"].startswith(NOT_MEASURED)
    cpu_target = result["targets"]["cpu_auto_over_plain"]
    assert cpu_target["target"] == 3.0 and cpu_target["met"] == (cpu_target["value"] >= 3.0)


def test_evaluate_prints_generation_and_feature_rates():
    result = _run("evaluate.py", "--preset", "tiny", "--images", "4", "--batch-size", "4", "--repeats", "1")
    assert set(result["generation"]) == {"latent", "reference"}
    assert set(result["features"]) == {"inception-v3-compat", "dtgan-defect-cnn"}
    assert all(v["images_per_s"] > 0 for v in [*result["generation"].values(), *result["features"].values()])
    assert result["targets"]["protocol_48k_minutes"].startswith(NOT_MEASURED)


@pytest.mark.slow
def test_ddp_scaling_runs_two_gloo_workers():
    result = _run(
        "ddp_scaling.py",
        "--preset",
        "tiny",
        "--workers",
        "1,2",
        "--per-worker-batch",
        "2",
        "--warmup",
        "0",
        "--repeats",
        "1",
    )
    assert [r["workers"] for r in result["runs"]] == [1, 2]
    assert all(r["backend"] == "gloo" and r["images_per_s"] > 0 for r in result["runs"])
    assert result["runs"][0]["scaling_efficiency"] == 1.0 and result["runs"][1]["scaling_efficiency"] > 0
