"""Optuna (seeded TPE through Ray Tune) over Eq. 8's lambdas and the ablation toggles, tracked in MLflow.

One objective (FID-mix) with ASHA early stopping on a cheap intermediate FID, or two objectives (FID-mix and
classifier error, study.run_downstream=true) with the Pareto front reported.

    python experiments/search.py --preset smoke -o study.search_space=experiments/search/lambdas.yaml
    python experiments/search.py --preset search_smoke
    python experiments/search.py -c search_cpu --export experiments/presets/search_cpu_winner.yaml

At the end the parent run gets Optuna's fANOVA parameter importances (and the Pareto front with two
objectives); ``--export`` writes the best completed trial as a preset (its name must contain 'search').
"""

from __future__ import annotations

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.search.driver import load_study_config, main_guard, study_arguments  # noqa: E402


def search(args) -> int:
    from dtgan.search.conclusion import conclude_search
    from dtgan.search.runner import run_search

    launch, rows, text = run_search(
        load_study_config(args), resume=args.resume, address=args.address, temp_dir=args.ray_temp_dir
    )
    print(text, flush=True)
    print(conclude_search(launch, rows, export=args.export), flush=True)
    return 0 if any(r.status == "completed" for r in rows) else 1


def arguments():
    parser = study_arguments(__doc__.splitlines()[0], "search_smoke")
    parser.add_argument(
        "--export",
        default=None,
        metavar="PRESET_PATH",
        help="write the winner as a preset, e.g. experiments/presets/search_cpu_winner.yaml",
    )
    return parser


if __name__ == "__main__":
    raise SystemExit(main_guard(search, arguments()))
