"""What a finished search's early stopping did, read from its Tune folder: the steps each trial trained, the
intermediate signal it reported at each step, its objective when it completed, the training steps spent against
every trial run to the end, and whether the signal at each rung orders the completed trials as the objective does
(Spearman's rho over the completed trials; with few of them, a reading, not a test). Prints JSON.

    python benchmarks/search_signal_rank.py ray_results/search-search_cpu-20261206-212900 --total-steps 1500
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import permutations
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

SIGNAL = "search/defect_miss_pct_intermediate"
OBJECTIVE = "downstream/error_mix_resnet10t_mean"


def read_trials(folder: Path, signal: str, objective: str) -> list[dict]:
    """One record per ``trial_*/result.json``: params, signal by step, status, objective (completed only)."""
    trials = []
    for result in sorted(folder.glob("trial_*/result.json")):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if not lines:
            continue
        last = lines[-1]
        done = (
            last.get("trial_done") == 1.0
        )  # set by a trial that ran to its end (Tune's "done" also marks a stop)
        start = lines[0]["timestamp"] - lines[0].get("time_this_iter_s", 0.0)
        trials.append(
            {
                "trial": result.parent.name.removeprefix("trial_"),
                "status": "completed" if done else "stopped",
                "steps": int(last.get("step", 0)),
                "params": last.get("config", {}).get("search", {}),
                "signal_by_step": {int(r["step"]): r[signal] for r in lines if signal in r and "step" in r},
                "objective": last.get(objective) if done else None,
                "start": start,
                "end": last["timestamp"],
            }
        )
    return trials


def trials_of(folder: Path, signal: str, objective: str) -> list[dict]:
    """``read_trials``, saying on stderr in one line when the folder holds none."""
    trials = read_trials(folder, signal, objective)
    if not trials:
        print(f"{folder}: no trial_*/result.json with results; pass a search's Tune folder", file=sys.stderr)
    return trials


def exact_p(a: list[float], b: list[float]) -> float:
    """Two-sided permutation p of Spearman's rho for a few pairs (every ordering of b; 8 pairs = 40,320): scipy's
    t approximation says p = 0 for a perfect rank order of 3 pairs, whose exact p is 1/3."""
    ra, rb = rankdata(a), rankdata(b)
    observed = abs(np.corrcoef(ra, rb)[0, 1])
    hits = [abs(np.corrcoef(ra, np.array(p))[0, 1]) >= observed - 1e-12 for p in permutations(rb)]
    return float(np.mean(hits))


def rank_agreement(trials: list[dict]) -> dict[int, dict]:
    """Spearman's rho between the signal at each step and the objective, over the completed trials (exact p up to
    8 of them)."""
    completed = [t for t in trials if t["status"] == "completed" and t["objective"] is not None]
    steps = sorted({s for t in completed for s in t["signal_by_step"]})
    out = {}
    for step in steps:
        pairs = [
            (t["signal_by_step"][step], t["objective"]) for t in completed if step in t["signal_by_step"]
        ]
        if (agreement := spearman(pairs)) is not None:
            out[step] = agreement
    return out


def spearman(pairs: list[tuple[float, float]]) -> dict | None:
    """n, Spearman's rho and its two-sided p (exact up to 8 pairs) of (signal, objective) pairs; None below 3."""
    if len(pairs) < 3:
        return None
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    rho, p = spearmanr(a, b)
    return {"n": len(pairs), "rho": float(rho), "p": exact_p(a, b) if len(pairs) <= 8 else float(p)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the search's Tune folder (STORAGE/STUDY-LAUNCH)")
    parser.add_argument("--total-steps", type=int, required=True, help="train.total_steps of a full trial")
    parser.add_argument("--signal", default=SIGNAL)
    parser.add_argument("--objective", default=OBJECTIVE)
    args = parser.parse_args()
    trials = trials_of(args.folder, args.signal, args.objective)
    if not trials:
        return 2
    completed = [t for t in trials if t["objective"] is not None]
    best = min(completed, key=lambda t: t["objective"]) if completed else None
    spent = sum(args.total_steps if t["status"] == "completed" else t["steps"] for t in trials)
    everything = args.total_steps * len(trials)
    report = {
        "folder": str(args.folder),
        "trials": len(trials),
        "completed": len(completed),
        "stopped": len(trials) - len(completed),
        "training_steps": spent,
        "training_steps_all_to_the_end": everything,
        "share_of_steps_spent": spent / everything,
        "wall_s": max(t["end"] for t in trials) - min(t["start"] for t in trials),
        "best_trial": best["trial"] if best else None,
        "best_value": best["objective"] if best else None,
        "signal_rank_agreement": rank_agreement(trials),
        "per_trial": [{k: v for k, v in t.items() if k not in ("start", "end")} for t in trials],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
