"""Confirm a search's winner on fresh GAN seeds: retrain it and the paper's lambdas, run the powered downstream
study, and print the seed-level verdict against trad_aug, Crop&Paste and the paper's lambdas.

    python experiments/confirm_search.py --candidate search_cpu_winner                   # `make confirm-search`
    python experiments/confirm_search.py --candidate cpu32 --baseline '' --seeds 11      # one preset alone
    python experiments/confirm_search.py --candidate search_cpu_winner --data-set second # the second data set

For every recipe (the candidate preset, then the baseline preset: by default `cpu32`, the paper's lambdas at the
CPU scale) and every GAN seed: `dtgan train -c PRESET -o train.seed=S`, then `dtgan downstream RUN -c
DOWNSTREAM_PRESET`. The arms that use no generator (trad_aug, crop_paste) are trained with the first run only
(the same classifier seeds give the same runs for every generator); later runs train the mix arm alone.
``--data-set`` trains and tests every run on one of the CPU data sets (experiments/_cpu_data.py; rendered on
first use); ``--jobs`` runs that many GAN runs (each trained, then classified) at once, one CPU thread each. It
resumes: a trained run or a downstream result that exists is not recomputed. The verdict (dtgan.downstream.power:
paired t over (GAN seed, classifier seed) pairs, Holm over the comparisons) is printed and written to
OUT/confirmation.md and .json; with --study-run-id it is also logged to that search's MLflow parent run.
``--evaluate`` also runs ``dtgan evaluate`` on each run's last checkpoint, with one evaluation preset for every
recipe, and adds the generators' table (dtgan.evaluation.reproduction: FID-mix, identity SSIM, locality, defect
recall, mean ± sd over GAN seeds) beside their downstream error: is the better generator the more useful one?
``--baseline-seeds`` trains the baseline on a subset of the seeds (when time is short); the candidate - baseline
comparison then pairs their shared GAN seeds, the others use all of each arm's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bootstrap import use_repository_package
from _cpu_data import DATA_SETS

use_repository_package()

from dtgan.config import load_config  # noqa: E402
from dtgan.downstream.power import (  # noqa: E402
    arm_series,
    cell_errors,
    compare,
    markdown,
    merge,
    verdict_line,
)
from dtgan.evaluation.inputs import evaluation_folder  # noqa: E402
from dtgan.evaluation.report import REPORT_FILE as EVALUATION_FILE  # noqa: E402
from dtgan.evaluation.reproduction import read_evaluation, summarise, summary_markdown  # noqa: E402
from dtgan.training.checkpoint import checkpoint_path, list_checkpoints  # noqa: E402
from dtgan.utils.atomic import write_text_atomic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], log_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.call(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"failed (exit {code}): {' '.join(command)}; see {log_path}")
    print(f"  done in {time.monotonic() - start:.0f} s: {log_path.name}", flush=True)


def recipe_name(preset: str) -> str:
    return Path(preset).stem


def total_steps(args, preset: str) -> int:
    return load_config(preset, args.override + _data_overrides(args)).train.total_steps


def train_and_classify(args, preset: str, seed: int, all_arms: bool) -> dict:
    """One GAN run of ``preset`` and its downstream study; the downstream payload."""
    dtgan = [sys.executable, "-m", "dtgan"]
    runs = Path(args.out) / "runs"
    name = f"{recipe_name(preset)}-seed{seed}"
    run_dir = runs / name
    overrides = ["-o", f"train.seed={seed}", "-o", f"train.out_dir={runs}", "-o", f"train.run_name={name}"]
    overrides += [x for o in args.override + _data_overrides(args) for x in ("-o", o)]
    total = total_steps(args, preset)
    if not checkpoint_path(run_dir, total).is_file():
        resume = ["--resume"] if list_checkpoints(run_dir) else []
        _run(
            dtgan + ["train", "-c", preset, *overrides, "--run-dir", str(run_dir), *resume],
            runs / f"{name}.train.log",
        )
    if args.evaluate:
        evaluate_run(args, run_dir, total, runs / f"{name}.evaluate.log")
    out = run_dir / "downstream"
    if not (out / "downstream.json").is_file():
        arms = [] if all_arms else ["-o", "downstream.arms=[mix]"]
        extra = [x for o in _downstream_overrides(args) for x in ("-o", o)]
        data = ["--data", DATA_SETS[args.data_set].training] if args.data_set else []
        _run(
            dtgan
            + [
                "downstream",
                str(run_dir),
                "-c",
                args.downstream_preset,
                *arms,
                *extra,
                *data,
                "--out",
                str(out),
            ],
            runs / f"{name}.downstream.log",
        )
    return json.loads((out / "downstream.json").read_text())


def evaluate_run(args, run_dir: Path, step: int, log_path: Path) -> None:
    """``dtgan evaluate`` of the run's last checkpoint with the evaluation preset (one preset for every recipe,
    so their FIDs are measured alike); skipped when that evaluation exists."""
    if (evaluation_folder(run_dir, step) / EVALUATION_FILE).is_file():
        return
    data = ["--data", DATA_SETS[args.data_set].training] if args.data_set else []
    overrides = [x for o in args.override for x in ("-o", o)]
    _run(
        [
            sys.executable,
            "-m",
            "dtgan",
            "evaluate",
            str(run_dir),
            "-c",
            args.evaluation_preset,
            *overrides,
            *data,
        ],
        log_path,
    )


def _seed_list(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _data_overrides(args) -> list[str]:
    return [f"data.path={DATA_SETS[args.data_set].training}"] if args.data_set else []


def _downstream_overrides(args) -> list[str]:
    chosen = [f"downstream.held_out_data={DATA_SETS[args.data_set].held_out}"] if args.data_set else []
    return chosen + args.downstream_override


def comparisons_of(candidate: str, baseline: str | None, arms: set[str]) -> list[tuple[str, str]]:
    pairs = [(f"{candidate} mix", a) for a in ("trad_aug", "crop_paste") if a in arms]
    if baseline:
        pairs += [(f"{candidate} mix", f"{baseline} mix")]
        pairs += [(f"{baseline} mix", a) for a in ("trad_aug", "crop_paste") if a in arms]
    if {"trad_aug", "crop_paste"} <= arms:
        pairs.append(("crop_paste", "trad_aug"))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--candidate", required=True, help="the winner's preset (e.g. a search_*.yaml export)"
    )
    parser.add_argument("--baseline", default="cpu32", help="the paper's lambdas at this scale; '' for none")
    parser.add_argument("--seeds", default="101,102,103", help="fresh GAN seeds (not the search's)")
    parser.add_argument(
        "--baseline-seeds",
        default=None,
        help="the baseline's GAN seeds, a subset of --seeds when time is short (default: --seeds); its comparison "
        "with the candidate pairs the shared seeds",
    )
    parser.add_argument("--downstream-preset", default="downstream_cpu_power")
    parser.add_argument(
        "-o", "--override", action="append", default=[], help="training override, both recipes"
    )
    parser.add_argument("--downstream-override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--data-set",
        choices=sorted(DATA_SETS),
        default=None,
        help="train and test on this CPU data set (default: the presets' own data)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="GAN runs at once, one CPU thread each")
    parser.add_argument("--out", default=None, help="default results/confirm-<candidate>[-<data set>]")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="also `dtgan evaluate` each run's last checkpoint and add the generators' table (FID-mix, identity "
        "SSIM, locality, defect recall) beside their downstream error",
    )
    parser.add_argument(
        "--evaluation-preset",
        default=None,
        help="the evaluation settings of --evaluate, the same for every recipe (default: the baseline, else the "
        "candidate)",
    )
    parser.add_argument("--study-run-id", default=None, help="MLflow parent run of the search: log the table")
    parser.add_argument(
        "--study-preset",
        default="search_cpu",
        help="the search's preset: its tracking settings find the store",
    )
    args = parser.parse_args()
    seeds = _seed_list(args.seeds)
    baseline_seeds = seeds if args.baseline_seeds is None else _seed_list(args.baseline_seeds)
    if not set(baseline_seeds) <= set(seeds):
        parser.error(f"--baseline-seeds {baseline_seeds}: each must be one of --seeds {seeds}")
    candidate = recipe_name(args.candidate)
    args.evaluation_preset = args.evaluation_preset or args.baseline or args.candidate
    args.out = args.out or f"results/confirm-{candidate}" + (f"-{args.data_set}" if args.data_set else "")
    used = {load_config(args.candidate, args.override + _data_overrides(args)).data.path}
    used.add(load_config(args.downstream_preset, _downstream_overrides(args)).downstream.held_out_data)
    renders = [r for s in DATA_SETS.values() for r in s.renders()]
    for path, synth in renders:
        if path in used and not (REPO / path).is_file():  # the CPU presets' data sets, rendered once
            _run(
                [sys.executable, "-m", "dtgan", "data", "synth", "--out", path, *synth],
                Path(args.out) / "synth.log",
            )
    presets = [args.candidate] + ([args.baseline] if args.baseline else [])
    started = time.monotonic()
    print(
        f"confirm: {presets} x GAN seeds {seeds}"
        + (f" (baseline {baseline_seeds})" if args.baseline and baseline_seeds != seeds else "")
        + f", downstream {args.downstream_preset}"
        + (f", data set {args.data_set}" if args.data_set else "")
        + f", {args.jobs} at a time",
        flush=True,
    )
    # The first run (the candidate's first seed) also trains the arms without a generator.
    order = [(args.candidate, seed) for seed in seeds]
    order += [(args.baseline, seed) for seed in baseline_seeds] if args.baseline else []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(
            pool.map(lambda ps: train_and_classify(args, ps[0], ps[1], all_arms=ps == order[0]), order)
        )
    payloads = [(recipe_name(p), s, payload) for (p, s), payload in zip(order, done, strict=True)]
    rows = merge([arm_series(p, recipe, seed) for recipe, seed, p in payloads])
    arms = {job["cell"]["arm"] for _, _, p in payloads for job in p["jobs"]}
    baseline = recipe_name(args.baseline) if args.baseline else None
    comparisons = compare(rows, comparisons_of(candidate, baseline, arms), alpha=args.alpha)
    test_images = payloads[0][2]["jobs"][0]["test_images"]
    text = markdown(rows, comparisons, cell_errors(payloads), alpha=args.alpha, test_images=test_images)
    generators = None
    if args.evaluate:
        records = [
            read_evaluation(
                Path(args.out) / "runs" / f"{recipe}-seed{seed}", recipe, seed, total_steps(args, preset)
            )
            for (preset, seed), (recipe, _, _) in zip(order, payloads, strict=True)
        ]
        generators = summarise(records)
        text += (
            f"\n\nThe generators (`dtgan evaluate` of each run's last checkpoint, evaluation preset "
            f"{recipe_name(args.evaluation_preset)}; the downstream rows are each run's own study):\n\n"
            + summary_markdown(generators)
        )
    out = Path(args.out)
    write_text_atomic(out / "confirmation.md", text + "\n")
    write_text_atomic(
        out / "confirmation.json",
        json.dumps(
            {
                "candidate": args.candidate,
                "baseline": args.baseline,
                "gan_seeds": seeds,
                "baseline_gan_seeds": baseline_seeds if args.baseline else None,
                "rows": {n: {f"{g}/{s}": v for (g, s), v in r.items()} for n, r in rows.items()},
                "comparisons": [
                    {
                        "a": c.a,
                        "b": c.b,
                        "pairs": c.pairs,
                        "mean_difference": c.mean_difference,
                        "p_adjusted": c.test.p_adjusted if c.test else None,
                        "significant": c.test.significant if c.test else None,
                        "min_detectable": c.test.min_detectable if c.test else None,
                    }
                    for c in comparisons
                ],
                "generators": generators,
            },
            indent=2,
        )
        + "\n",
    )
    verdict = verdict_line(comparisons)
    if args.study_run_id:
        from dtgan.tracking import Tracker, search_record

        tracker = Tracker.from_config(load_config(args.study_preset).tracking)
        search_record.log_confirmation(tracker, args.study_run_id, text, verdict)
    print(text)
    print(f"\nverdict: {verdict}")
    print(f"\nwritten: {out / 'confirmation.md'} ({(time.monotonic() - started) / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
