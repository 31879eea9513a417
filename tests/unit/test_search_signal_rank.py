"""benchmarks/search_signal_rank.py on a Tune folder written as Tune writes it (one JSON line per report in
trial_*/result.json): a trial stopped early is not 'completed' although Tune marks its last result done, the
steps spent count a completed trial at full length, and the signal's rank agreement uses completed trials only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "search_signal_rank.py"
rank = load_script("benchmarks/search_signal_rank.py")

SIGNAL, OBJECTIVE = rank.SIGNAL, rank.OBJECTIVE


def _trial(folder: Path, name: str, signals: dict[int, float], objective: float | None) -> None:
    lines = []
    for i, (step, value) in enumerate(sorted(signals.items())):
        lines.append(
            {
                "step": step,
                SIGNAL: value,
                OBJECTIVE: value,  # the stand-in Tune sees before the end
                "timestamp": 1000 + 100 * (i + 1),
                "time_this_iter_s": 100.0,
                "done": False,
                "config": {"search": {"loss.lambda_fg": float(len(name))}},
            }
        )
    lines[-1]["done"] = True  # Tune marks the last result of a stopped trial done as well
    if objective is not None:
        lines[-1].update({OBJECTIVE: objective, "trial_done": 1.0})
    (folder / f"trial_{name}").mkdir(parents=True)
    (folder / f"trial_{name}" / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_stopped_and_completed_trials_and_the_rank_of_the_signal(tmp_path):
    for name, signals, objective in [
        ("a", {250: 90.0, 500: 50.0, 1500: 45.0}, 30.0),
        ("b", {250: 80.0, 500: 60.0, 1500: 55.0}, 35.0),
        ("c", {250: 70.0, 500: 70.0, 1500: 65.0}, 40.0),
        ("d", {250: 95.0, 500: 80.0}, None),  # stopped at the rung
    ]:
        _trial(tmp_path, name, signals, objective)
    trials = rank.read_trials(tmp_path, SIGNAL, OBJECTIVE)
    assert [(t["trial"], t["status"], t["steps"]) for t in trials] == [
        ("a", "completed", 1500),
        ("b", "completed", 1500),
        ("c", "completed", 1500),
        ("d", "stopped", 500),
    ]
    assert trials[3]["objective"] is None  # its stand-in value is not an objective
    agreement = rank.rank_agreement(trials)
    assert agreement[500] == {"n": 3, "rho": pytest.approx(1.0), "p": pytest.approx(1 / 3)}  # 2 of 6 orders
    assert agreement[250]["rho"] == pytest.approx(-1.0)  # at 250 the order was reversed
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--total-steps", "1500"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["training_steps"] == 3 * 1500 + 500
    assert report["training_steps_all_to_the_end"] == 4 * 1500
    assert (report["best_trial"], report["best_value"]) == ("a", 30.0)


def test_a_folder_without_results_is_a_one_line_error(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--total-steps", "10"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert str(tmp_path) in done.stderr and len(done.stderr.strip().splitlines()) == 1
