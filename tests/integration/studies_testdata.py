"""The smallest study settings that run every code path: 20 steps of the smoke GAN, tiny evaluation counts."""

from __future__ import annotations

from pathlib import Path

from dtgan.data.synth import synthesize_benchmark


def tiny_benchmark(folder: Path) -> Path:
    """2 products at 32 px (the second has no gan_train spots)."""
    path = folder / "bench.parquet"
    synthesize_benchmark(str(path), size=32, scale=0.02, seed=0, products=2, threads=1)
    return path


def tiny_study_overrides(folder: Path, data_path: Path, steps: int = 20) -> list[str]:
    """Overrides of the smoke preset: every path under ``folder``, the fewest images that still score."""
    return [
        f"data.path={data_path}",
        f"train.total_steps={steps}",
        f"train.checkpoint_every_steps={steps // 2}",
        f"train.sample_every_steps={steps}",
        "train.log_every_steps=5",
        f"tracking.tracking_uri=sqlite:///{folder}/mlflow.db",
        f"tracking.artifact_root={folder}/mlartifacts",
        f"study.storage_path={folder}/ray_results",
        "study.local_num_cpus=2",
        "study.report_bootstrap_samples=10",
        f"evaluation.cache_dir={folder}/evalcache",
        "evaluation.images_per_product_per_defect=8",
        "evaluation.kid_subset_size_min=2",
        "evaluation.kid_subsets=5",
        "evaluation.disentanglement_num_images=4",
        "evaluation.grid_num_sources=2",
        "evaluation.grid_num_styles=2",
        "evaluation.grid_num_references=2",
        "evaluation.defect_cnn.min_steps=10",
        "evaluation.defect_cnn.epochs=1",
        # the pretrained offline extractor on a corpus of a few images per class (seconds, cached per HOME)
        "evaluation.pretrained_cnn.images_per_class=8",
        "evaluation.pretrained_cnn.epochs=1",
        "evaluation.pretrained_cnn.render_sides=[32]",
    ]
