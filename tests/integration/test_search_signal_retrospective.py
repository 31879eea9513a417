"""benchmarks/search_signal_retrospective.py on a Tune folder laid out as a dtgan search leaves it (trial_*/result.json
beside runs/trial-*/ with config.yaml and checkpoints): each saved checkpoint is probed with the real `dtgan
downstream` (mix arm, the trial's config, the validation split read), the probe and the search's own signal are
ranked against the objective over the completed trials, and a second call recomputes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from downstream_testdata import tiny_benchmark, tiny_checkpoint

from dtgan.config import load_config
from dtgan.config.loader import to_yaml
from dtgan.data.synth import synthesize_benchmark

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "search_signal_retrospective.py"
SIGNAL, OBJECTIVE = "search/defect_miss_pct_intermediate", "downstream/error_mix_resnet10t_mean"


def _trial(folder: Path, name: str, data: Path, seed: int, signal: float, objective: float | None) -> None:
    lines = [
        {"step": 0, SIGNAL: signal, "timestamp": 1000, "time_this_iter_s": 1.0, "config": {"search": {}}},
    ]
    if objective is not None:
        lines[-1].update({OBJECTIVE: objective, "trial_done": 1.0})
    (folder / f"trial_{name}").mkdir(parents=True)
    (folder / f"trial_{name}" / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = folder / "runs" / f"trial-{name}"
    overrides = (f"train.seed={seed}",)
    tiny_checkpoint(run.parent / f"tmp-{name}", data, overrides).parent.parent.rename(run)
    (run / "config.yaml").write_text(to_yaml(load_config("smoke", [f"data.path={data}", *overrides])))


def test_probes_every_checkpoint_ranks_both_signals_and_resumes(tmp_path):
    data = tiny_benchmark(tmp_path)
    held_out = tmp_path / "held_out.parquet"
    synthesize_benchmark(
        str(held_out), size=32, scale=0.01, seed=1, products=2, threads=1, held_out_per_cell=6
    )
    folder = tmp_path / "search-tiny"
    for i, (signal, objective) in enumerate([(10.0, 30.0), (20.0, 40.0), (30.0, 35.0), (5.0, None)]):
        _trial(folder, f"t{i}", data, seed=i, signal=signal, objective=objective)
    command = [
        sys.executable,
        str(SCRIPT),
        str(folder),
        "--steps",
        "0,250",  # no trial saved step 250: skipped, not an error
        *("-o", f"downstream.held_out_data={held_out}"),
        *("-o", "downstream.epochs=1", "-o", "downstream.normal_images_per_product=[10]"),
        *("-o", "downstream.synthesis_sources_per_product=10", "-o", "downstream.batch_size=8"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["trials"] == 4 and report["completed"] == 3
    for trial in report[
        "per_trial"
    ]:  # the stopped trial is probed too: what would a cut on the probe have kept?
        assert list(trial["probe_by_step"]) == ["0"]
        probe = trial["probe_by_step"]["0"]
        written = json.loads(
            (
                folder
                / "signal-retrospective"
                / f"trial-{trial['trial']}"
                / "step_00000000-seeds1"
                / "downstream.json"
            ).read_text()
        )
        assert [j["cell"]["arm"] for j in written["jobs"]] == ["mix"]  # one classifier seed, the mix arm
        assert probe["probe_val_error_pct"] == written["jobs"][0]["val_error_pct"]
        assert written["jobs"][0]["val_images"] > 0
    ranked = report["rank_agreement"]
    assert ranked["search_signal"]["0"]["n"] == 3
    assert ranked["search_signal"]["0"]["rho"] == pytest.approx(0.5)  # signal 10,20,30 against 30,40,35
    assert ranked["probe_val_error"]["0"]["n"] == 3
    # resumable: a second call runs no classifier
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "step 0:" not in again.stderr
    assert json.loads(again.stdout)["per_trial"] == report["per_trial"]


def test_a_folder_without_trials_is_a_one_line_error(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and str(tmp_path) in done.stderr
