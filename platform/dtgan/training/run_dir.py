"""The run folder: <out_dir>/<run_name>/ with config.yaml, provenance.json, checkpoints/, samples/, metrics.jsonl
(and config_changes.jsonl when a resume changed resumable keys: config.yaml is then the config after the change)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from dtgan.config.loader import to_yaml
from dtgan.config.root import DTGANConfig
from dtgan.errors import ConfigError
from dtgan.provenance import collect_provenance
from dtgan.training.checkpoint import latest_checkpoint, sweep_partial_checkpoints
from dtgan.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CONFIG_CHANGES_FILE = "config_changes.jsonl"  # one line per resume that changed resumable keys


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
    swept = sweep_partial_checkpoints(run_dir)
    if swept:
        log.info("%s: removed %d unfinished checkpoint write(s) (%s)", run_dir, len(swept), swept[0].name)
    write_text_atomic(run_dir / "config.yaml", to_yaml(config))
    write_text_atomic(
        run_dir / "provenance.json", json.dumps(collect_provenance(config.train.seed), indent=2) + "\n"
    )


def record_config_changes(run_dir: Path, step: int, changes: dict[str, dict]) -> None:
    """Append ``{"step": k, "changes": {key: {"before", "after"}}}``: steps after k ran with "after"."""
    path = Path(run_dir) / CONFIG_CHANGES_FILE
    before = path.read_text() if path.is_file() else ""
    write_text_atomic(path, before + json.dumps({"step": step, "changes": changes}, sort_keys=True) + "\n")
