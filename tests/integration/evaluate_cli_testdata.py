"""A two-step smoke run on a small embedded benchmark: what the evaluation CLI tests evaluate."""

from __future__ import annotations

from pathlib import Path

from dtgan.config import load_config
from dtgan.data.synth import synthesize_benchmark
from dtgan.training.loop import TrainResult, train


def two_step_run(root: Path) -> tuple[str, TrainResult]:
    """(data path, the run) under ``root``: benchmark at 32 px, scale 0.05, seed 0; run folder ``root/runs/r``."""
    data = str(root / "bench.parquet")
    synthesize_benchmark(data, size=32, scale=0.05, seed=0)
    config = load_config(
        "smoke",
        [
            f"data.path={data}",
            "train.total_steps=2",
            "train.checkpoint_every_steps=2",
            "train.sample_every_steps=2",
            f"train.out_dir={root / 'runs'}",
            "train.run_name=r",
        ],
    )
    return data, train(config)
