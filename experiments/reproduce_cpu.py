"""Reproduce docs/results.md on a CPU: steps (a) and (g) x 3 seeds under the CPU preset, with learning curves,
the disentanglement metrics, sample grids and the downstream classifier's error (trad_aug vs mix).

    python experiments/reproduce_cpu.py                       # `make reproduce-cpu`: ~1.5 h on 2 cores
    python experiments/reproduce_cpu.py --data-set second     # the second data set (textures/defects not tuned on)
    python experiments/reproduce_cpu.py --seeds 777 --jobs 1  # one seed

Every step is the user-facing CLI (`dtgan data synth`, `dtgan train`, `dtgan evaluate --all-checkpoints`,
`dtgan downstream`), run as subprocesses `--jobs` at a time with one thread each. It resumes: a run whose last
checkpoint exists is not trained again, a curve or downstream result that exists is not recomputed. The summary
(summary.md, summary.json, curves.png) is written to OUT.
"""

from __future__ import annotations

import argparse
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
from dtgan.evaluation.reproduction import read_run, write_summary  # noqa: E402
from dtgan.training.checkpoint import checkpoint_path, list_checkpoints  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], log_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.call(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(
            f"failed (exit {code}) after {time.monotonic() - start:.0f} s: {' '.join(command)}; "
            f"see {log_path}"
        )
    print(
        f"  done in {time.monotonic() - start:.0f} s: {' '.join(command[2:5])} ... ({log_path.name})",
        flush=True,
    )


def _job(args, variant: str, seed: int, data_path: str) -> tuple[str, int, Path]:
    dtgan = [sys.executable, "-m", "dtgan"]
    runs = Path(args.out) / "runs"
    name = f"{variant}-seed{seed}"
    run_dir = runs / name
    total = load_config(args.preset).train.total_steps
    if not checkpoint_path(run_dir, total).is_file():
        resume = ["--resume"] if list_checkpoints(run_dir) else []
        _run(
            dtgan
            + [
                "train",
                "-c",
                args.preset,
                "-o",
                f"model.ablation={variant}",
                "-o",
                f"train.seed={seed}",
                "-o",
                f"data.path={data_path}",
                "-o",
                f"train.out_dir={runs}",
                "-o",
                f"train.run_name={name}",
                "--run-dir",
                str(run_dir),
                *resume,
            ],
            runs / f"{name}.train.log",
        )
    if not (run_dir / "evaluation" / "curve.json").is_file():
        _run(
            dtgan + ["evaluate", str(run_dir), "--all-checkpoints", "-c", args.preset, "--data", data_path],
            runs / f"{name}.curve.log",
        )
    if args.downstream_preset and not (run_dir / "downstream" / "downstream.json").is_file():
        _run(
            dtgan
            + [
                "downstream",
                str(run_dir),
                "-c",
                args.downstream_preset,
                "--data",
                data_path,
                "--out",
                str(run_dir / "downstream"),
            ],
            runs / f"{name}.downstream.log",
        )
    return variant, seed, run_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c",
        "--config",
        "--preset",
        dest="preset",
        metavar="PRESET",
        default="cpu32",
        help="training and evaluation preset (default cpu32), as `dtgan -c`",
    )
    parser.add_argument("--downstream-preset", default="downstream_cpu", help="'' skips the downstream study")
    parser.add_argument("--data-set", choices=sorted(DATA_SETS), default="benchmark")
    parser.add_argument("--variants", default="a,g")
    parser.add_argument("--seeds", default="777,1,2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one CPU thread each")
    parser.add_argument("--out", default=None, help="default: results/<preset>-<data set>")
    args = parser.parse_args()
    args.out = args.out or f"results/{args.preset}-{args.data_set}"
    data_set = DATA_SETS[args.data_set]
    data_path, synth_args = data_set.training, data_set.training_synth
    if not (REPO / data_path).is_file():
        _run(
            [sys.executable, "-m", "dtgan", "data", "synth", "--out", data_path, *synth_args],
            Path(args.out) / "data_synth.log",
        )
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    started = time.monotonic()
    print(
        f"reproduce: {args.preset} on {data_path}, variants {variants} x seeds {seeds}, {args.jobs} at a time",
        flush=True,
    )
    # (g) first: its runs take twice as long as (a)'s, so they start early and the pool stays busy.
    order = sorted(
        ((v, s) for v in variants for s in seeds), key=lambda vs: (vs[0] != "g", seeds.index(vs[1]))
    )
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(lambda vs: _job(args, vs[0], vs[1], data_path), order))
    records = [read_run(run_dir, variant, seed) for variant, seed, run_dir in done]
    paths = write_summary(records, args.out)
    print(paths["markdown"].read_text())
    print(
        f"summary: {paths['markdown']}, {paths['json']}, {paths['curves']} "
        f"({(time.monotonic() - started) / 60:.1f} min)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
