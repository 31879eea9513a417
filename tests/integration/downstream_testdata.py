"""A tiny benchmark Parquet file and an (untrained) tiny checkpoint for the downstream tests."""

from __future__ import annotations

from pathlib import Path

from dtgan.config import load_config
from dtgan.data.parquet_io import read_vocab
from dtgan.data.synth import synthesize_benchmark
from dtgan.training.checkpoint import save_checkpoint
from dtgan.training.environment import Environment
from dtgan.training.state import build_train_state


def tiny_benchmark(folder: Path) -> Path:
    """2 products at 32 px: per product 8 gan_train + 55 gan_holdout normals, val 3 / test 7 per cell; the
    second product ('cast') has no gan_train spots."""
    path = folder / "bench.parquet"
    synthesize_benchmark(str(path), size=32, scale=0.01, seed=0, products=2, threads=1)
    return path


def tiny_checkpoint(folder: Path, data_path: Path, overrides: tuple[str, ...] = ()) -> Path:
    """A step-0 checkpoint of the smoke GAN (plumbing only: its synthetic images are untrained); ``overrides``
    are config overrides saved with it (e.g. its evaluation settings)."""
    cfg = load_config("smoke", [f"data.path={data_path}", *overrides])
    vocab = read_vocab(str(data_path))
    state = build_train_state(cfg, len(vocab.defects), len(vocab.products), Environment())
    return save_checkpoint(folder / "run" / "checkpoints" / "step_00000000.pt", state, cfg, vocab, {})
