"""What early stopping saved: the same search (same preset, space, Optuna seed, trial count) run twice, with ASHA on
the intermediate signal and with every trial to the end (FIFO, no intermediate signal), and the compute each
spent against the best objective value each found.

    python experiments/search_pruning.py -c search_cpu                                  # the full-size question
    python experiments/search_pruning.py -c search_cpu --reduced --out results/pruning  # minutes, not hours

Compute spent = training steps summed over the trials (each trial's last reported step; a trial run to the end
counts train.total_steps) and wall time of each search on the same machine; best value = the best completed
trial's objective. While the searcher is still in its random start-up phase (Optuna TPE's first 10 trials), both
searches sample the same points in the same order, so the difference is what pruning cut. ``--reduced`` makes every
trial small (listed in REDUCED) and says so in the output.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.search.driver import load_study_config, main_guard, study_arguments  # noqa: E402
from dtgan.utils.atomic import write_text_atomic  # noqa: E402

# The reduced scale: the benchmark rendered at 32 px and scale 0.05 (no resizing, 35 gan_train normals per
# product), 90 steps of the CPU model, the signal every 10 steps (rungs at 10, 30, 90), a defect classifier of one
# epoch, and a one-seed, two-epoch downstream classifier on 40 normals per product.
REDUCED_DATA = {
    "data/cpu_reduced/benchmark.parquet": ["--size", "32", "--scale", "0.05", "--defect-boldness", "2"],
    "data/cpu_reduced/search_heldout.parquet": [
        "--size",
        "32",
        "--scale",
        "0.05",
        "--seed",
        "2",
        "--held-out-per-cell",
        "40",
        "--defect-boldness",
        "2",
    ],
}
REDUCED = [
    "data.path=data/cpu_reduced/benchmark.parquet",
    "downstream.held_out_data=data/cpu_reduced/search_heldout.parquet",
    "train.total_steps=90",
    "loss.ds_decay_steps=90",
    "train.checkpoint_every_steps=10",
    "train.sample_every_steps=90",
    "train.checkpoint_at_start=false",
    "study.num_samples=6",
    "study.asha_grace_period_reports=1",
    "study.intermediate_fid_every_steps=10",
    "study.intermediate_fid_images_per_cell=8",
    "evaluation.images_per_product_per_defect=16",
    "evaluation.disentanglement_num_images=8",
    "evaluation.kid_subset_size_min=2",
    "evaluation.defect_cnn.min_steps=10",
    "evaluation.defect_cnn.epochs=1",
    "downstream.epochs=2",
    "downstream.num_seeds=1",
    "downstream.normal_images_per_product=[40]",
    "downstream.synthesis_sources_per_product=40",
]


def _steps(row: dict, total: int) -> int:
    step = row["metrics"].get("step")
    if row["status"] == "completed":
        return total
    return int(step) if isinstance(step, int | float) and math.isfinite(step) else 0


def summary(rows: list[dict], metric: str, total_steps: int, wall_s: float) -> dict:
    completed = [r for r in rows if r["status"] == "completed" and metric in r["metrics"]]
    best = min(completed, key=lambda r: r["metrics"][metric]) if completed else None
    return {
        "trials": len(rows),
        "completed": len(completed),
        "stopped": sum(r["status"] == "stopped" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        "training_steps": sum(_steps(r, total_steps) for r in rows),
        "wall_s": wall_s,
        "best_value": best["metrics"][metric] if best else None,
        "best_trial": best["trial"] if best else None,
        "best_params": best["params"] if best else None,
        "per_trial": [
            {
                "trial": r["trial"],
                "status": r["status"],
                "steps": _steps(r, total_steps),
                "params": r["params"],
                "value": r["metrics"].get(metric),
            }
            for r in rows
        ],
    }


def parent_run_of(tracker, study: str, launch: str | None) -> str:
    """The MLflow parent run of the launch ``launch`` (its resume key), else the study's latest."""
    from dtgan import keys

    if launch:
        experiment_id = tracker.experiment_id(tracker.experiment_name_for(study))
        found = tracker.client.search_runs(
            [experiment_id],
            f"tags.{keys.TAG_RUN_KIND} = '{keys.RUN_KIND_STUDY}' AND tags.{keys.TAG_RESUME_KEY} = '{launch}'",
        )
        if found:
            return found[0].info.run_id
    return tracker.latest_study_run(tracker.experiment_name_for(study))


def conclude(args, mode: str, config, result: dict) -> str:
    """Optuna's importances (and the winner, exported under --out) on the parent run of one arm's search."""
    from types import SimpleNamespace

    from dtgan.search.conclusion import conclude_search
    from dtgan.search.driver import absolute_paths
    from dtgan.tracking import Tracker

    tracker = Tracker.from_config(config.tracking)
    study = config.study.name
    rows = [
        {
            "trial": t["trial"],
            "status": t["status"],
            "params": t["params"],
            "metrics": {} if t["value"] is None else {config.study.objective.metric: t["value"]},
            "run_id": None,
        }
        for t in result["per_trial"]
    ]
    launch = SimpleNamespace(
        config=absolute_paths(config),
        tracker=tracker,
        parent_run_id=parent_run_of(tracker, study, result.get("launch")),
        study_name=study,
        run_name=result.get("launch", study),
    )
    export = Path(args.out) / f"search_{mode}_winner.yaml" if args.out and result["completed"] else None
    return conclude_search(launch, rows, export=export)


def from_tune_folder(storage: Path, study: str, metric: str, total_steps: int) -> dict:
    """An arm's summary read back from its latest Tune folder (``trial_*/result.json``): for a launch whose driver
    was stopped before it wrote pruning.json."""
    launches = sorted(storage.glob(f"{study}-*"))
    if not launches:
        return summary([], metric, total_steps, 0.0)
    rows, starts, ends = [], [], []
    for result in sorted(launches[-1].glob("trial_*/result.json")):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        last = lines[-1]
        starts.append(lines[0]["timestamp"] - lines[0].get("time_this_iter_s", 0.0))
        ends.append(last["timestamp"])
        done = last.get("trial_done") == 1.0
        rows.append(
            {
                "trial": f"trial-{result.parent.name.removeprefix('trial_')}",
                "status": "completed" if done else "stopped",
                "params": last.get("config", {}).get("search", {}),
                "metrics": {
                    "step": last.get("step"),
                    **({metric: last[metric]} if done and metric in last else {}),
                },
            }
        )
    # wall time: from the first trial's start to the last result (Tune's own timestamps)
    wall = (max(ends) - min(starts)) if starts and ends else 0.0
    return {**summary(rows, metric, total_steps, wall), "launch": launches[-1].name}


def measure(args) -> int:
    from dtgan.search.runner import run_search

    overrides = (REDUCED if args.reduced else []) + list(args.override)
    if args.reduced:
        from dtgan.data.synth import synthesize_benchmark

        for path, synth in REDUCED_DATA.items():
            if not Path(path).is_file():
                options = dict(zip(synth[::2], synth[1::2]))
                synthesize_benchmark(
                    path,
                    size=int(options["--size"]),
                    scale=float(options["--scale"]),
                    seed=int(options.get("--seed", 0)),
                    defect_boldness=float(options["--defect-boldness"]),
                    held_out_per_cell=int(options["--held-out-per-cell"])
                    if "--held-out-per-cell" in options
                    else None,
                    threads=1,
                )
    results = {}
    for mode in ("asha", "fifo"):
        args.override = overrides + [f"study.scheduler={mode}", f"study.name=pruning-{mode}"]
        if mode == "fifo":
            args.override.append("study.intermediate_fid_every_steps=null")  # no signal to pay for
        config = load_study_config(args)
        if args.conclude_only:
            saved = Path(args.out) / "pruning.json"
            if saved.is_file():
                results[mode] = json.loads(saved.read_text())[mode]
                launches = sorted(
                    Path(config.study.storage_path or "ray_results").glob(f"{config.study.name}-*")
                )
                results[mode].setdefault("launch", launches[-1].name if launches else None)
            else:
                storage = Path(config.study.storage_path or "ray_results")
                results[mode] = from_tune_folder(
                    storage, config.study.name, config.study.objective.metric, config.train.total_steps
                )
                print(
                    f"{mode} (from its Tune folder): "
                    f"{json.dumps({k: v for k, v in results[mode].items() if k != 'per_trial'})}"
                )
            if not results[mode]["trials"]:
                continue
            print(f"{mode}:{conclude(args, mode, config, results[mode])}", flush=True)
            continue
        started = time.monotonic()
        launch, rows, _ = run_search(config, address=args.address, temp_dir=args.ray_temp_dir)
        results[mode] = summary(
            [r.record() for r in rows],
            config.study.objective.metric,
            config.train.total_steps,
            time.monotonic() - started,
        )
        results[mode]["launch"] = launch.run_name
        print(
            f"{mode}: {json.dumps({k: v for k, v in results[mode].items() if k != 'per_trial'})}", flush=True
        )
        print(conclude(args, mode, config, results[mode]), flush=True)
    if args.conclude_only:
        return 0
    a, f = results["asha"], results["fifo"]
    scale = "reduced (" + ", ".join(REDUCED) + ")" if args.reduced else "full"
    lines = [
        f"What early stopping saved ({args.config}, scale: {scale}; objective {config.study.objective.metric}):",
        "",
        "| search | trials | completed | stopped early | training steps | wall (min) | best value | best trial |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in (("ASHA on the signal", a), ("every trial to the end", f)):
        best = "-" if r["best_value"] is None else f"{r['best_value']:.2f}"
        lines.append(
            f"| {name} | {r['trials']} | {r['completed']} | {r['stopped']} | {r['training_steps']} | "
            f"{r['wall_s'] / 60:.1f} | {best} | {r['best_trial']} |"
        )
    if f["training_steps"]:
        lines += [
            "",
            f"ASHA spent {100 * a['training_steps'] / f['training_steps']:.0f} % of the training steps "
            f"and {100 * a['wall_s'] / max(f['wall_s'], 1e-9):.0f} % of the wall time.",
        ]
    text = "\n".join(lines)
    print(text, flush=True)
    if args.out:
        out = Path(args.out)
        write_text_atomic(out / "pruning.md", text + "\n")
        write_text_atomic(
            out / "pruning.json", json.dumps({"scale": scale, **results}, indent=2, default=str) + "\n"
        )
    return 0


def arguments():
    parser = study_arguments(__doc__.splitlines()[0], "search_cpu")
    parser.add_argument("--reduced", action="store_true", help="the reduced scale of REDUCED (minutes)")
    parser.add_argument("--out", default=None, help="folder for pruning.md and pruning.json")
    parser.add_argument(
        "--conclude-only",
        action="store_true",
        help="read --out/pruning.json and log each arm's importances (and export its winner) again",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main_guard(measure, arguments()))
