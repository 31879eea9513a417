"""The ablation ladder (a)-(g) x seeds on Ray Tune, tracked in MLflow; prints the Table 15 comparison.

python experiments/ablation.py --preset smoke
python experiments/ablation.py --preset smoke --resume          # after a killed driver
ray job submit --address http://HEAD:8265 --working-dir . -- python experiments/ablation.py --preset sdi
"""

from __future__ import annotations

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.search.driver import load_study_config, main_guard, study_arguments  # noqa: E402


def ablation(args) -> int:
    from dtgan.search.runner import run_ablation

    _, rows, text = run_ablation(
        load_study_config(args), resume=args.resume, address=args.address, temp_dir=args.ray_temp_dir
    )
    print(text, flush=True)
    return 0 if any(r.status == "completed" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main_guard(ablation, study_arguments(__doc__.splitlines()[0], "smoke")))
