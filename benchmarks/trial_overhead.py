"""Trial overhead on a local Ray: ray.init, trial start -> first training step, last step -> trial end; the demo.

With ``--study`` a real ablation study runs through the studies' own entry point
(``dtgan.search.runner.run_ablation``, what ``experiments/ablation.py`` and ``make demo`` run) on the demo
preset cut to ``--steps`` steps per trial and the ``--variants`` given, into a temporary folder; its
single-worker trials train in the Tune trial process. Every trial writes ``runs/<trial_key>/timeline.json``
(``dtgan.search.timeline``); from it and the driver's own clock the script derives, per trial, start ->
first step (Tune dispatching the trial process, imports, MLflow run, data/nets/samples setup) and last
step -> trial end (final checkpoint and samples, evaluation, and the bookkeeping after it: tags, artifacts,
metrics, end of the MLflow run), and for the driver ray.init, the MLflow parent run and Tune's setup.

Otherwise a "trial" is one Ray Train run of the platform (``dtgan.training.ray_train.fit_distributed``, a
TorchTrainer with one CPU worker) on the smoke preset, as the studies launch them; the Tune layer of the
studies (experiments/*.py) is not part of it. Start overhead = first report's arrival - fit() call - the
first step's own time; end overhead = fit() return - last report's arrival (it includes writing and
registering the final checkpoint). With ``--demo`` the demo's commands run too and their wall time is
reported; ``--ablation-projection`` adds the smoke ablation's expected training time (7 ladder steps x
train.total_steps x measured ms/step + 7 x measured overhead). Prints JSON.

    python benchmarks/trial_overhead.py --demo --ablation-projection
    python benchmarks/trial_overhead.py --study --trials 0 --variants a,g --steps 4
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
        from dtgan import keys

        with open(self.path, "a") as f:
            f.write(
                json.dumps({"t": time.time(), "step": step, "step_ms": metrics.get(keys.TRAIN_STEP_MS)})
                + "\n"
            )


def synth_data(out_dir: Path) -> tuple[Path, float]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dtgan", "data", "synth", "--out", str(out_dir)],
        check=True,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out_dir / "benchmark.parquet", time.perf_counter() - started


def _env() -> dict:
    from common import PLATFORM_DIR

    return os.environ | {
        "PYTHONPATH": os.pathsep.join([PLATFORM_DIR, os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }


def one_trial(data: Path, work: Path, name: str, steps: int) -> dict:
    from dtgan.config.loader import load_config
    from dtgan.training.ray_train import fit_distributed

    config = load_config(
        "smoke",
        [
            f"data.path={data}",
            f"train.total_steps={steps}",
            "train.log_every_steps=1",
            f"train.sample_every_steps={steps}",
            f"train.checkpoint_every_steps={steps}",
            f"train.out_dir={work}",
            "distributed.workers=1",
            f"train.run_name={name}",
        ],
    )
    times = work / f"{name}.reports.jsonl"
    started = time.time()
    fit_distributed(
        config,
        run_name=name,
        storage_path=str(work / "storage"),
        resume=False,
        on_report=ReportTimes(str(times)),
        progress=False,
    )
    ended = time.time()
    reports = [json.loads(line) for line in times.read_text().splitlines()]
    first, last = reports[0], reports[-1]
    return {
        "start_to_first_step_s": round(first["t"] - started - first["step_ms"] / 1000, 2),
        "last_step_to_end_s": round(ended - last["t"], 2),
        "trial_wall_s": round(ended - started, 2),
        "steps": last["step"],
        "step_ms_median": round(statistics.median(r["step_ms"] for r in reports), 1),
    }


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
            "wall_ms_per_iteration_median"
        ]
    return {
        "ms_per_iteration": per_step,
        "steps_per_trial": total_steps,
        "training_minutes": round(sum(per_step.values()) * total_steps / 1000 / 60, 1),
    }


def finish_projection(projection: dict, trials: list[dict]) -> dict:
    """Add the measured per-trial overhead (trial wall time minus its steps) for the 7 ladder trials."""
    overhead = statistics.median(t["trial_wall_s"] - t["steps"] * t["step_ms_median"] / 1000 for t in trials)
    projection["trial_overhead_minutes"] = round(len(LADDER) * overhead / 60, 1)
    projection["total_minutes_without_evaluation"] = round(
        projection["training_minutes"] + projection["trial_overhead_minutes"], 1
    )
    projection["note"] = (
        f"{len(LADDER)} ladder steps x {projection['steps_per_trial']} steps (smoke preset), "
        "one trial at a time; evaluation not included"
    )
    return projection


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--trials",
        type=int,
        default=2,
        help="TorchTrainer trials run one after the other (first pays ray.init); 0 = none",
    )
    parser.add_argument("--steps", type=int, default=3, help="training steps per trial")
    parser.add_argument("--demo", action="store_true", help="also time the demo's commands")
    parser.add_argument(
        "--ablation-projection", action="store_true", help="project the smoke ablation's time"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--study",
        action="store_true",
        help="also run a tiny ablation study (demo preset) and break its trials' start/end down",
    )
    parser.add_argument("--variants", default="a,g", help="ladder steps of the --study (one trial each)")
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
        if (
            args.demo
        ):  # first: the demo starts its own Ray, which must not meet a second instance (stack facts)
            result["demo"] = run_demo(work / "demo_cwd")
        if args.study:  # before the TorchTrainer trials: the study starts (and stops) its own local Ray
            result["study"] = study_overhead(data, work / "study", args.variants.split(","), args.steps)
        if args.trials:
            from dtgan.training.ray_train import ensure_ray

            started = time.perf_counter()
            ensure_ray(1, 1.0)
            result["ray_init_s"] = round(time.perf_counter() - started, 2)
            trials = [one_trial(data, work, f"overhead-{i}", args.steps) for i in range(args.trials)]
            result["trials"] = trials
            worst = max(max(t["start_to_first_step_s"], t["last_step_to_end_s"]) for t in trials)
            result["targets"] = {
                "trial_overhead_s": {
                    "value": worst,
                    "target": OVERHEAD_TARGET_S,
                    "met": worst <= OVERHEAD_TARGET_S,
                }
            }
    if args.ablation_projection and args.trials:
        result["smoke_ablation_projection"] = finish_projection(projection, result["trials"])
    emit(result, args.out)


class Clocked:
    """Wraps a driver function: wall and CPU seconds of its (last) call, and when it started and returned."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.called = self.returned = self.cpu_s = None

    def __call__(self, *args, **kwargs):
        self.called, cpu = time.time(), time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.returned, self.cpu_s = time.time(), time.process_time() - cpu

    @property
    def wall_s(self) -> float:
        return self.returned - self.called


def _span(timeline: dict, start: str, end: str) -> dict:
    marks = timeline["marks"]
    if start not in marks or end not in marks:
        return {}
    a, b = marks[start], marks[end]
    return {"wall_s": round(b["wall_s"] - a["wall_s"], 2), "cpu_s": round(b["cpu_s"] - a["cpu_s"], 2)}


def trial_breakdown(timeline: dict, dispatched_at: float) -> dict:
    """Start and end overhead of one trial from its timeline.json; ``dispatched_at``: when Tune could start it
    (run_tune's call for the first trial, the previous trial's end for the next ones, one trial at a time)."""
    marks, first, last = timeline["marks"], timeline["first_report"], timeline["last_reports"]
    first_step_start = first["wall_s"] - first["step_ms"] / 1000
    start_in_trial = first_step_start - marks["trial_start"]["wall_s"]
    dispatch = marks["trial_start"]["wall_s"] - dispatched_at
    start = {
        "total_s": round(dispatch + start_in_trial, 2),
        "tune_dispatch_s": round(
            dispatch, 2
        ),  # Tune schedules it, the trial actor starts and imports Ray/dtgan
        "in_trial_s": round(start_in_trial, 2),
        "imports": _span(timeline, "trial_start", "imported"),  # evaluation/tracking/training modules (torch)
        "mlflow_start_trial": _span(timeline, "imported", "mlflow_run_started"),
        "before_train": _span(timeline, "mlflow_run_started", "train_start"),
        "train_setup": {
            "wall_s": round(first_step_start - marks["train_start"]["wall_s"], 2),
            "note": "train(): run folder, data, nets, sample sources (CPU not split from step 1)",
        },
    }
    # The loop reports every step (train.log_every_steps=1): the last step ended its own step_ms after the
    # report before it; the last report itself comes after the final sample grids and checkpoint.
    if len(last) == 2 and last[1]["step"] == last[0]["step"] + 1:
        last_step_end = last[0]["wall_s"] + last[1]["step_ms"] / 1000
    else:
        last_step_end = last[-1]["wall_s"]
    outputs = last[-1]["wall_s"] - last_step_end
    to_end = marks["trial_end"]["wall_s"] - last_step_end
    evaluation = _span(timeline, "metrics_flushed", "evaluation_end")
    end = {
        "total_s": round(to_end, 2),
        "without_evaluation_s": round(to_end - evaluation["wall_s"], 2),
        "final_samples_and_checkpoint_s": round(outputs, 2),
        "train_return_and_metrics_flush_s": round(marks["metrics_flushed"]["wall_s"] - last[-1]["wall_s"], 2),
        "evaluation": evaluation,
        "bookkeeping": _span(timeline, "evaluation_end", "trial_end"),  # tags, artifacts, metrics, end_run
    }
    step_s = (last_step_end - first_step_start) / last[-1]["step"]
    return {
        "start_to_first_step": start,
        "last_step_to_end": end,
        "steps": last[-1]["step"],
        "training_s_per_step": round(step_s, 2),
        "trial_cpu_s": round(marks["trial_end"]["cpu_s"] - marks["trial_start"]["cpu_s"], 2),
    }


def study_overhead(data: Path, work: Path, variants: list[str], steps: int) -> dict:
    """A tiny ablation through ``run_ablation`` (the demo's code path): per-trial and driver overheads."""
    from dtgan.config.loader import load_config
    from dtgan.search import ray_tune, runner
    from dtgan.search.timeline import TIMELINE_FILE

    config = load_config(
        "demo",
        [
            f"data.path={data}",
            f"study.variants=[{','.join(variants)}]",
            f"train.total_steps={steps}",
            f"loss.ds_decay_steps={steps}",
            "train.log_every_steps=1",
            f"train.checkpoint_every_steps={steps}",
            f"train.sample_every_steps={steps}",
            f"study.storage_path={work / 'ray_results'}",
            f"evaluation.cache_dir={work / 'evalcache'}",
            f"tracking.tracking_uri=sqlite:///{work / 'mlflow.db'}",
            f"tracking.artifact_root={work / 'mlartifacts'}",
        ],
    )
    work.mkdir(parents=True)
    # The driver's pieces, clocked where runner calls them (its module attributes), then the whole run.
    launch = runner.launch_study = Clocked(runner.launch_study)
    tune_run = ray_tune.run_tune = Clocked(ray_tune.run_tune)
    init, stop = Clocked(ray_tune.start_ray), Clocked(ray_tune.stop_ray)
    init(config.study)  # the study then finds Ray running and leaves it to us: its start is timed alone
    try:
        study = Clocked(runner.run_ablation)
        _, rows, _ = study(config)
    finally:
        stop()
    if any(r.status != "completed" for r in rows):
        raise SystemExit(
            f"--study: not every trial completed: {[(r.trial, str(r.status), r.error) for r in rows]}"
        )
    runs_dir = next((work / "ray_results").glob("*/runs"))
    timelines = {r.trial: json.loads((runs_dir / r.trial / TIMELINE_FILE).read_text()) for r in rows}
    trials, dispatched_at = {}, tune_run.called
    for key in (r.trial for r in rows):  # one trial at a time, in ladder order (max_concurrent_trials=1)
        trials[key] = trial_breakdown(timelines[key], dispatched_at)
        dispatched_at = timelines[key]["marks"]["trial_end"]["wall_s"]
    worst_start = max(t["start_to_first_step"]["total_s"] for t in trials.values())
    worst_end = max(t["last_step_to_end"]["without_evaluation_s"] for t in trials.values())
    return {
        "command_equivalent": f"experiments/ablation.py --preset demo -o study.variants=[{','.join(variants)}] "
        f"-o train.total_steps={steps} -o train.log_every_steps=1 ...",
        "driver": {
            "ray_init": {"wall_s": round(init.wall_s, 2), "cpu_s": round(init.cpu_s, 2)},
            "mlflow_parent_run": {"wall_s": round(launch.wall_s, 2), "cpu_s": round(launch.cpu_s, 2)},
            "tune_after_last_trial_s": round(
                tune_run.returned - dispatched_at, 2
            ),  # final report, Tune's teardown
            "summary_and_report": {"wall_s": round(study.returned - tune_run.returned, 2)},
            "ray_shutdown_s": round(stop.wall_s, 2),
            "study_wall_s": round(study.wall_s, 2),
            "driver_cpu_s": round(study.cpu_s, 2),
        },
        "trials": trials,
        "targets": {
            "start_to_first_step_s": {
                "value": worst_start,
                "target": OVERHEAD_TARGET_S,
                "met": worst_start <= OVERHEAD_TARGET_S,
            },
            "last_step_to_end_without_evaluation_s": {
                "value": worst_end,
                "target": OVERHEAD_TARGET_S,
                "met": worst_end <= OVERHEAD_TARGET_S,
            },
        },
    }


def run_demo(work: Path) -> dict:
    """The demo's commands (Makefile ``demo`` without its venv setup), timed as a user would run them.

    They run in an empty folder (the demo writes demo/ under the working directory) with the scripts of
    this checkout.
    """
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [
        line.strip().replace("$(PY)", sys.executable).replace(" experiments/", f" {ROOT}/experiments/")
        for line in demo
        if line.startswith("\t")
    ]
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, shell=True, check=True, cwd=work, env=_env(), stdout=subprocess.DEVNULL)
    minutes = (time.perf_counter() - started) / 60
    return {
        "commands": commands,
        "wall_minutes": round(minutes, 2),
        "target": {"target_minutes": DEMO_TARGET_MIN, "met": minutes <= DEMO_TARGET_MIN},
        "note": "the Makefile's demo as it is on this branch, without `make setup`",
    }


if __name__ == "__main__":
    main()
