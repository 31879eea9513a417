"""The augmentation study (paper Tables 2, 3, 8) on a trained generator: arms x data set sizes x seeds.

    python experiments/augmentation.py --preset downstream_smoke --checkpoint ray_results/RUN/runs/g-seed777
    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python experiments/augmentation.py --preset sdi --checkpoint s3://.../step_00100000.pt
"""

from __future__ import annotations

from _bootstrap import use_repository_package

use_repository_package()

from dtgan.search.driver import load_study_config, main_guard, study_arguments  # noqa: E402


def augmentation(args) -> int:
    from dtgan.search.augmentation import run_augmentation

    _, _, text = run_augmentation(
        load_study_config(args),
        args.checkpoint,
        method=args.method,
        resume=args.resume,
        address=args.address,
        temp_dir=args.ray_temp_dir,
    )
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    parser = study_arguments(__doc__.splitlines()[0], "downstream_smoke")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="CHECKPOINT_OR_RUN",
        help="generator checkpoint file or run folder (needed by the latent, reference and mix arms)",
    )
    parser.add_argument(
        "--method",
        default=None,
        help="row label of the generator (tag variant); default dtgan/stargan_v2/ladder_<step>",
    )
    raise SystemExit(main_guard(augmentation, parser))
