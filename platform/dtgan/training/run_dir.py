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
from dtgan.training.checkpoint import CHECKPOINT_DIR, latest_checkpoint, sweep_partial_checkpoints
from dtgan.training.samples import SAMPLE_DIR
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
            f"{run_dir} already holds checkpoints; pass --resume to continue it, or start another run in a new "
            "folder (-o train.run_name=NAME, or --run-dir PATH)"
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


def rewind_metrics(run_dir: Path, step: int) -> int:
    """Resuming at ``step``: drop the metrics lines of later steps (a run stopped after its last checkpoint had
    logged steps it now logs again) and a last line cut short by a crash. Returns the number of lines dropped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            logged = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(logged, int) and logged <= step:
            kept.append(line)
    if len(kept) < len(lines):
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
    return len(lines) - len(kept)


# What prepare_run_dir and the loop write before the first checkpoint, sample grid or metrics line.
_BOOKKEEPING_FILES = ("config.yaml", "provenance.json", METRICS_FILE, CONFIG_CHANGES_FILE)
_OUTPUT_DIRS = (CHECKPOINT_DIR, SAMPLE_DIR)


def first_missing_folder(path: Path) -> Path | None:
    """The highest folder on the way to ``path`` (``path`` included) that does not exist yet, or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_if_nothing_kept(run_dir: Path, created: Path) -> bool:
    """After a failed run: delete ``run_dir`` (and the folders up to ``created``, which this run made) when it
    holds nothing of value, i.e. no checkpoint, no sample grid, no metrics line, no file of anyone else.
    True when removed; a folder with anything else in it is left as it is (the record of the failure)."""
    if not run_dir.is_dir():
        return False
    for entry in run_dir.iterdir():
        if entry.name in _OUTPUT_DIRS and entry.is_dir() and not any(entry.iterdir()):
            continue
        if entry.name == METRICS_FILE and entry.is_file() and entry.stat().st_size == 0:
            continue
        if entry.name in _BOOKKEEPING_FILES and entry.name != METRICS_FILE and entry.is_file():
            continue
        return False
    for entry in run_dir.iterdir():
        entry.rmdir() if entry.is_dir() else entry.unlink()
    folder = run_dir
    while True:
        folder.rmdir()
        if folder == created or any(folder.parent.iterdir()):
            break
        folder = folder.parent
    log.warning(
        "%s: removed the run folder: the run failed before it wrote a checkpoint, sample or metric", run_dir
    )
    return True
