"""Would another early-stopping signal have ranked a finished search's trials better? Probe every trial's saved
checkpoints with a short downstream study (the trial's own downstream section, mix arm, ``--num-seeds``
classifier seeds) and compare, step by step, how the probe's validation error and the signal the search cut on
order the completed trials against their objective (Spearman's rho, exact permutation p up to 8 trials). Prints
JSON; each probe's downstream.json is kept under ``--out`` (per trial, step and number of seeds; a different
``-o`` needs its own ``--out``), so a stopped run resumes where it was.

    python benchmarks/search_signal_retrospective.py ray_results/search-search_cpu-20261206-212900 --steps 250,500

The probe reads the validation split of the trial's held-out data (never its test split, which the objective is
measured on), so a signal that agrees is not the objective read early. A probe costs one short classifier
training per seed: see "seconds" in the output against the training steps it would let ASHA cut.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_signal_rank import OBJECTIVE, SIGNAL, spearman, trials_of  # noqa: E402

PROBE = "probe_val_error_pct"


def checkpoint_file(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.pt"


def probe_command(run_dir: Path, step: int, out: Path, num_seeds: int, overrides: list[str]) -> list[str]:
    """``dtgan downstream`` on one checkpoint with the trial's resolved config (its held-out data, its recipe), the
    mix arm only and ``num_seeds`` classifier seeds."""
    extra = [f"downstream.num_seeds={num_seeds}", "downstream.arms=[mix]", *overrides]
    return [
        sys.executable,
        "-m",
        "dtgan",
        "downstream",
        str(checkpoint_file(run_dir, step)),
        "-c",
        str(run_dir / "config.yaml"),
        *[x for o in extra for x in ("-o", o)],
        "--out",
        str(out),
    ]


def probe_result(payload: dict) -> dict:
    """Validation and test error (mean over the probe's classifier seeds) and the classifiers' seconds."""
    jobs = [j for j in payload["jobs"] if j["cell"]["arm"] == "mix"]
    return {
        PROBE: statistics.fmean(j["val_error_pct"] for j in jobs),
        "probe_test_error_pct": statistics.fmean(j["test_error_pct"] for j in jobs),
        "seconds": payload["wall_seconds"],
        "seeds": len(jobs),
    }


def run_probe(run_dir: Path, step: int, out: Path, num_seeds: int, overrides: list[str]) -> dict | None:
    """The probe of one checkpoint (computed unless ``out/downstream.json`` exists); None without the checkpoint."""
    if not checkpoint_file(run_dir, step).is_file():
        return None
    done = out / "downstream.json"
    if not done.is_file():
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        started = time.monotonic()
        with open(out / "probe.log", "w") as log:
            code = subprocess.call(
                probe_command(run_dir, step, out, num_seeds, overrides),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if code != 0:
            raise SystemExit(
                f"probe failed (exit {code}) for {run_dir.name} step {step}; see {out / 'probe.log'}"
            )
        print(
            f"  {run_dir.name} step {step}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True
        )
    return probe_result(json.loads(done.read_text()))


def agreement(completed: list[dict], values_at) -> dict[int, dict]:
    """Spearman's rho of ``values_at(trial, step)`` against the objective at every step, over the completed trials
    that have a value there (three at least)."""
    steps = sorted({s for t in completed for s in t["probes"]})
    out = {}
    for step in steps:
        pairs = [(values_at(t, step), t["objective"]) for t in completed]
        if (found := spearman([(a, b) for a, b in pairs if a is not None])) is not None:
            out[step] = found
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the search's Tune folder (STORAGE/STUDY-LAUNCH)")
    parser.add_argument("--steps", default="250,500", help="checkpoint steps to probe, comma-separated")
    parser.add_argument("--num-seeds", type=int, default=1, help="classifier seeds per probe")
    parser.add_argument(
        "-o", "--override", action="append", default=[], help="downstream override of the probe"
    )
    parser.add_argument("--out", type=Path, default=None, help="default FOLDER/signal-retrospective")
    parser.add_argument("--signal", default=SIGNAL, help="the signal the search cut on (Tune result key)")
    parser.add_argument("--objective", default=OBJECTIVE)
    args = parser.parse_args()
    trials = trials_of(args.folder, args.signal, args.objective)
    if not trials:
        return 2
    out = args.out or args.folder / "signal-retrospective"
    steps = [int(s) for s in args.steps.split(",") if s.strip()]
    for t in trials:
        run_dir = args.folder / "runs" / f"trial-{t['trial']}"
        if not (run_dir / "config.yaml").is_file():
            print(f"{run_dir}: no config.yaml; is this the Tune folder of a dtgan search?", file=sys.stderr)
            return 2
        t["probes"] = {}
        for step in steps:
            where = out / run_dir.name / f"step_{step:08d}-seeds{args.num_seeds}"
            probe = run_probe(run_dir, step, where, args.num_seeds, args.override)
            if probe is not None:
                t["probes"][step] = probe
    completed = [t for t in trials if t["objective"] is not None]
    report = {
        "folder": str(args.folder),
        "probe": {
            "classifier_seeds": args.num_seeds,
            "overrides": args.override,
            "reads": "validation split",
        },
        "trials": len(trials),
        "completed": len(completed),
        "probe_seconds_mean": statistics.fmean(p["seconds"] for t in trials for p in t["probes"].values())
        if any(t["probes"] for t in trials)
        else None,
        "rank_agreement": {
            "probe_val_error": agreement(completed, lambda t, s: t["probes"].get(s, {}).get(PROBE)),
            "search_signal": agreement(completed, lambda t, s: t["signal_by_step"].get(s)),
        },
        "per_trial": [
            {
                "trial": t["trial"],
                "status": t["status"],
                "objective": t["objective"],
                "search_signal_by_step": {s: t["signal_by_step"].get(s) for s in steps},
                "probe_by_step": t["probes"],
            }
            for t in trials
        ],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
