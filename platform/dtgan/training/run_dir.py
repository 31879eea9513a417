"""The run folder: <out_dir>/<run_name>/ with config.yaml, provenance.json, checkpoints/, samples/, metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from dtgan.config.loader import to_yaml
from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.tracking.provenance import collect_provenance
from dtgan.training.checkpoint import latest_checkpoint
from dtgan.utils.atomic import write_text_atomic

METRICS_FILE = "metrics.jsonl"


def default_run_name(config: DTGANConfig) -> str:
    """Stable (no timestamp, so a restarted job finds its folder): preset, ablation step and seed."""
    return f"{config.preset or 'custom'}-{config.model.ablation}-seed{config.train.seed}"


def resolve_run_dir(config: DTGANConfig, run_dir: str | Path | None = None) -> Path:
    """``run_dir`` when given, else ``train.out_dir / (train.run_name or the default name)``."""
    if run_dir is not None:
        return Path(run_dir)
    return Path(config.train.out_dir) / (config.train.run_name or default_run_name(config))


def prepare_run_dir(run_dir: Path, config: DTGANConfig, resuming: bool) -> None:
    """Create the folder and write config.yaml and provenance.json; refuse to mix two runs in one folder."""
    if not resuming and latest_checkpoint(run_dir) is not None:
        raise ConfigError(
            f"{run_dir} already holds checkpoints; pass --resume to continue it or set train.run_name to start another run"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", to_yaml(config))
    write_text_atomic(run_dir / "provenance.json", json.dumps(collect_provenance(config.train.seed), indent=2) + "\n")
