"""Trial overhead on a local Ray: ray.init, trial start -> first training step, last step -> trial end; the demo.

A "trial" here is one Ray Train run of the platform (``dtgan.search.ray_train.fit_distributed``, a
TorchTrainer with one CPU worker) on the smoke preset, as the studies launch them; the Tune layer of the
studies (experiments/*.py) is not part of it. Start overhead = first report's arrival - fit() call - the
first step's own time; end overhead = fit() return - last report's arrival (it includes writing and
registering the final checkpoint). With ``--demo`` the demo's commands run too and their wall time is
reported; ``--ablation-projection`` adds the smoke ablation's expected training time (7 ladder steps x
train.total_steps x measured ms/step + 7 x measured overhead). Prints JSON.

    python benchmarks/trial_overhead.py --demo --ablation-projection
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, base_parser, describe_device, emit, pick_device

OVERHEAD_TARGET_S = 10.0
DEMO_TARGET_MIN = 15.0
LADDER = ("a", "b", "c", "d", "e", "f", "g")


class ReportTimes:
    """``on_report`` hook: appends (wall time, step, step_ms) to a file (it runs in Ray's Train controller)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, step: int, metrics: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"t": time.time(), "step": step, "step_ms": metrics.get("train/step_ms")}) + "\n")


def synth_data(out_dir: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dtgan", "data", "synth", "--out", str(out_dir)], check=True,
                   env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out_dir / "benchmark.parquet", time.perf_counter() - started


def _env() -> dict:
    from common import PLATFORM_DIR

    return os.environ | {"PYTHONPATH": os.pathsep.join([PLATFORM_DIR, os.environ.get("PYTHONPATH", "")]),
                         "HF_HUB_OFFLINE": "1"}


def one_trial(data: Path, work: Path, name: str, steps: int) -> dict:
    from dtgan.config.loader import load_config
    from dtgan.search.ray_train import fit_distributed

    config = load_config("smoke", [f"data.path={data}", f"train.total_steps={steps}", "train.log_every_steps=1",
                                   f"train.sample_every_steps={steps}", f"train.checkpoint_every_steps={steps}",
                                   f"train.out_dir={work}", "distributed.workers=1", f"train.run_name={name}"])
    times = work / f"{name}.reports.jsonl"
    started = time.time()
    fit_distributed(config, run_name=name, storage_path=str(work / "storage"), resume=False,
                    on_report=ReportTimes(str(times)), progress=False)
    ended = time.time()
    reports = [json.loads(line) for line in times.read_text().splitlines()]
    first, last = reports[0], reports[-1]
    return {"start_to_first_step_s": round(first["t"] - started - first["step_ms"] / 1000, 2),
            "last_step_to_end_s": round(ended - last["t"], 2),
            "trial_wall_s": round(ended - started, 2), "steps": last["step"],
            "step_ms_median": round(statistics.median(r["step_ms"] for r in reports), 1)}


def ablation_projection(repeats: int) -> dict:
    """ms per iteration of every ladder step on the smoke config (this process, random batches)."""
    import train_step as bench

    from dtgan.config.loader import load_config

    total_steps = load_config("smoke").train.total_steps

    device = torch.device("cpu")
    per_step = {}
    for step in LADDER:
        config = bench._config("smoke", step, 8, "plain", compile_fast=False)
        per_step[step] = bench.measure(config, device, warmup=1, repeats=repeats, profile=False)[
            "wall_ms_per_iteration_median"]
    return {"ms_per_iteration": per_step, "steps_per_trial": total_steps,
            "training_minutes": round(sum(per_step.values()) * total_steps / 1000 / 60, 1)}


def finish_projection(projection: dict, trials: list[dict]) -> dict:
    """Add the measured per-trial overhead (trial wall time minus its steps) for the 7 ladder trials."""
    overhead = statistics.median(t["trial_wall_s"] - t["steps"] * t["step_ms_median"] / 1000 for t in trials)
    projection["trial_overhead_minutes"] = round(len(LADDER) * overhead / 60, 1)
    projection["total_minutes_without_evaluation"] = round(
        projection["training_minutes"] + projection["trial_overhead_minutes"], 1)
    projection["note"] = (f"{len(LADDER)} ladder steps x {projection['steps_per_trial']} steps (smoke preset), "
                          "one trial at a time; evaluation not included")
    return projection


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2,
                        help="TorchTrainer trials run one after the other (first pays ray.init); 0 = none")
    parser.add_argument("--steps", type=int, default=3, help="training steps per trial")
    parser.add_argument("--demo", action="store_true", help="also time the demo's commands")
    parser.add_argument("--ablation-projection", action="store_true", help="project the smoke ablation's time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device("cpu" if args.device == "auto" else args.device)
    result: dict = {"benchmark": "trial_overhead", "environment": describe_device(device)}
    # Measured before Ray starts: Ray's own processes would otherwise compete with the timed steps.
    projection = ablation_projection(args.repeats) if args.ablation_projection else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, synth_s = synth_data(work / "data")
        if args.demo:  # first: the demo starts its own Ray, which must not meet a second instance (stack facts)
            result["demo"] = run_demo(work / "demo_cwd")
        if args.trials:
            from dtgan.search.ray_train import ensure_ray

            started = time.perf_counter()
            ensure_ray(1, 1.0)
            result["ray_init_s"] = round(time.perf_counter() - started, 2)
            trials = [one_trial(data, work, f"overhead-{i}", args.steps) for i in range(args.trials)]
            result["trials"] = trials
            worst = max(max(t["start_to_first_step_s"], t["last_step_to_end_s"]) for t in trials)
            result["targets"] = {"trial_overhead_s": {"value": worst, "target": OVERHEAD_TARGET_S,
                                                      "met": worst <= OVERHEAD_TARGET_S}}
    if args.ablation_projection and args.trials:
        result["smoke_ablation_projection"] = finish_projection(projection, result["trials"])
    emit(result, args.out)


def run_demo(work: Path) -> dict:
    """The demo's commands (Makefile ``demo`` without its venv setup), timed as a user would run them.

    They run in an empty folder (the demo writes demo/ under the working directory) with the scripts of
    this checkout.
    """
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip().replace("$(PY)", sys.executable).replace(" experiments/", f" {ROOT}/experiments/")
                for line in demo if line.startswith("\t")]
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, shell=True, check=True, cwd=work, env=_env(), stdout=subprocess.DEVNULL)
    minutes = (time.perf_counter() - started) / 60
    return {"commands": commands, "wall_minutes": round(minutes, 2),
            "target": {"target_minutes": DEMO_TARGET_MIN, "met": minutes <= DEMO_TARGET_MIN},
            "note": "the Makefile's demo as it is on this branch, without `make setup`"}


if __name__ == "__main__":
    main()
