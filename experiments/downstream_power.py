"""The paired power analysis of finished downstream studies: arms' errors, paired differences over (GAN seed,
classifier seed) with the seed-level verdict and the smallest detectable difference, error per product x class
cell and the unseen cell apart (dtgan.downstream.power).

    python experiments/downstream_power.py g:777=results/a/downstream/downstream.json g:1=results/b/downstream.json \\
        --compare "g mix,trad_aug" --compare "crop_paste,trad_aug"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.downstream.power import arm_series, cell_errors, compare, markdown, merge  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RECIPE:GAN_SEED=DOWNSTREAM_JSON")
    parser.add_argument("--compare", action="append", default=[], metavar="ARM_A,ARM_B")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--target", type=float, default=2.0, help="difference (points) to size the seeds for")
    args = parser.parse_args()
    payloads = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        recipe, _, seed = label.partition(":")
        if not path or not seed or not Path(path).is_file():
            print(f"{spec}: expected RECIPE:GAN_SEED=PATH to a downstream.json", file=sys.stderr)
            return 2
        payloads.append((recipe, seed, json.loads(Path(path).read_text())))
    rows = merge([arm_series(p, recipe, seed) for recipe, seed, p in payloads])
    pairs = [tuple(c.split(",", 1)) for c in args.compare]
    unknown = [a for pair in pairs for a in pair if a not in rows]
    if unknown or any(len(p) != 2 for p in pairs):
        print(f"--compare: unknown arm(s) {unknown}; arms: {', '.join(rows)}", file=sys.stderr)
        return 2
    comparisons = compare(rows, pairs, alpha=args.alpha, target=args.target)
    test_images = payloads[0][2]["jobs"][0]["test_images"]
    print(markdown(rows, comparisons, cell_errors(payloads), args.alpha, args.target, test_images))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
