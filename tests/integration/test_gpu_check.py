"""benchmarks/gpu_check.py in its --cpu-smoke mode: every section but the CUDA-only figures runs at tiny sizes on
the CPU and lands in the JSON (no timing is asserted); without a GPU and without --cpu-smoke it refuses in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_check.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_cpu_smoke_writes_every_section_to_the_json(tmp_path):
    out = tmp_path / "check.json"
    done = _run("--cpu-smoke", "--threads", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    sections = result["sections"]
    assert result["mode"] == "cpu-smoke" and list(sections) == [
        "versions",
        "flags",
        "r1_channels_last",
        "steps",
        "profile",
        "train_resume",
        "kid",
        "evaluation",
    ]
    assert not [name for name, value in sections.items() if "error" in value or "skipped" in value]
    assert sections["versions"]["torch"] == torch.__version__
    assert "cuda_matmul_allow_tf32" in sections["flags"] and "auto_resolves_to" in sections["flags"]
    r1 = sections["r1_channels_last"]
    assert r1["finite"] and r1["r1_rel_diff"] < 1e-4 and r1["grad_max_abs_diff_over_max"] < 1e-4
    (row,) = sections["steps"]["runs"]
    assert row["plain"]["cpu_ms_per_iteration_median"] > 0
    assert row["auto+lazy_r1"]["iterations_per_timed_call"] == 2
    profile = sections["profile"]
    assert profile["plain"]["kernels_per_iteration"] is None  # CUDA-only figure
    assert (
        profile["plain"]["cpu_enqueue_ms_per_iteration"] > 0
        and profile["auto"]["aten_calls_per_iteration"] > 0
    )
    train = sections["train_resume"]
    assert train["first_half"]["last_step"] == 2 and train["resumed_to_the_end"] is True
    assert sections["kid"]["abs_diff"] < 1e-5
    assert sections["evaluation"]["generation"]["latent"]["images_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
def test_without_a_gpu_it_refuses_in_one_line(tmp_path):
    done = _run("--out", str(tmp_path / "x.json"), "--sections", "versions", timeout=120)
    assert done.returncode == 2 and "no CUDA device is visible" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
