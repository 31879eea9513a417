"""Optuna (seeded TPE through Ray Tune) over Eq. 8's lambdas and the ablation toggles, tracked in MLflow.

One objective (FID-mix) with ASHA early stopping on a cheap intermediate FID, or two objectives (FID-mix and
classifier error, study.run_downstream=true) with the Pareto front reported.

    python experiments/search.py --preset smoke -o study.search_space=experiments/search/lambdas.yaml
    python experiments/search.py --preset search_smoke
"""

from __future__ import annotations

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.search.driver import load_study_config, main_guard, study_arguments  # noqa: E402


def search(args) -> int:
    from dtgan.search.runner import run_search

    _, rows, text = run_search(
        load_study_config(args), resume=args.resume, address=args.address, temp_dir=args.ray_temp_dir
    )
    print(text, flush=True)
    return 0 if any(r.status == "completed" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main_guard(search, study_arguments(__doc__.splitlines()[0], "search_smoke")))
