"""Where a study's inputs and results live when it runs as a Ray job: never in Ray's temporary working dir.

``ray job submit --working-dir .`` unpacks the checkout (minus what git ignores, so minus ``data/``) into
``.../runtime_resources/working_dir_files/_ray_pkg_<hash>/`` and deletes it when the job ends. A study started
there would write its sqlite store, artifacts, checkpoints and Tune results into that folder and lose them, and
would not find the git-ignored embedded benchmark. So paths that resolve inside it move under a durable home
(``$DTGAN_HOME``, default ``~/dtgan``), and the embedded benchmark is synthesised where it is missing (it is
deterministic: the README's ``dtgan data synth`` with its defaults).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dtgan.config.root import DTGANConfig
from dtgan.errors import DataError
from dtgan.search.ladder import apply_overrides
from dtgan.tracking.locations import resolve_artifact_root, resolve_tracking_uri, sqlite_path

log = logging.getLogger(__name__)

RAY_PACKAGE_PREFIX = "_ray_pkg_"  # Ray names each unpacked working_dir package so
DURABLE_HOME_ENV = "DTGAN_HOME"
DEFAULT_DURABLE_HOME = "~/dtgan"
EMBEDDED_BENCHMARK = (
    "data/synthetic/benchmark.parquet"  # `dtgan data synth`'s default output, smoke's data.path
)
BENCHMARK_IN_STORAGE = "data/benchmark.parquet"


def ray_working_dir(path: str | Path) -> Path | None:
    """The Ray job package folder ``path`` lies in, or None."""
    resolved = Path(path).expanduser().resolve()
    return next((p for p in (resolved, *resolved.parents) if p.name.startswith(RAY_PACKAGE_PREFIX)), None)


def durable_home() -> Path:
    return Path(os.environ.get(DURABLE_HOME_ENV) or DEFAULT_DURABLE_HOME).expanduser().resolve()


def _inside(path: str | Path | None, folder: Path) -> bool:
    if path is None or "://" in str(path):
        return False
    return Path(path).expanduser().resolve().is_relative_to(folder)


def move_out_of_ray_working_dir(config: DTGANConfig, cwd: str | Path | None = None) -> DTGANConfig:
    """``config`` (absolute paths) with the storage, run, cache and tracking locations that lie inside Ray's
    temporary working dir moved under :func:`durable_home`; one warning line says where they went."""
    job_dir = ray_working_dir(cwd if cwd is not None else Path.cwd())
    if job_dir is None:
        return config
    home = durable_home()
    delta: dict[str, dict] = {}
    moved: list[str] = []

    def move(section: str, key: str, target: Path | str) -> None:
        delta.setdefault(section, {})[key] = str(target)
        moved.append(f"{section}.{key}={target}")

    if _inside(config.study.storage_path, job_dir):
        move("study", "storage_path", home / "ray_results")
    if _inside(config.train.out_dir, job_dir):
        move("train", "out_dir", home / "runs")
    if _inside(config.evaluation.cache_dir, job_dir):
        move("evaluation", "cache_dir", home / "cache" / "evaluation")
    uri = resolve_tracking_uri(config.tracking, cwd=job_dir)
    if _inside(sqlite_path(uri), job_dir):
        uri = f"sqlite:///{home / 'mlflow.db'}"
        move("tracking", "tracking_uri", uri)
    root = resolve_artifact_root(config.tracking, uri, cwd=job_dir)
    if root is not None and root.startswith("file://") and _inside(root.removeprefix("file://"), job_dir):
        move("tracking", "artifact_root", home / "mlartifacts")
    if not moved:
        return config
    log.warning(
        "running in Ray's temporary working dir %s, deleted when the job ends: %s (set $%s, "
        "MLFLOW_TRACKING_URI or DTGAN_STORAGE_PATH to choose)",
        job_dir,
        ", ".join(moved),
        DURABLE_HOME_ENV,
    )
    return apply_overrides(config, delta)


def ensure_embedded_benchmark(
    config: DTGANConfig, given_path: str, cwd: str | Path | None = None
) -> DTGANConfig:
    """Synthesise the embedded benchmark where ``data.path`` names it (``given_path``, as the preset wrote it)
    and it is missing: in place, or in the study storage when the place is Ray's temporary working dir.
    A missing data set inside that dir is an error saying why it is missing."""
    from dtgan.data.synth import synthesize_benchmark

    path = config.data.path
    if "://" in path or Path(path).is_file():
        return config
    job_dir = ray_working_dir(cwd if cwd is not None else Path.cwd())
    inside_job = job_dir is not None and _inside(path, job_dir)
    if Path(given_path) != Path(EMBEDDED_BENCHMARK):
        if inside_job:
            raise DataError(
                f"{path}: no such data set in the job's working dir (`ray job submit --working-dir` leaves out what "
                "git ignores); put it where every node reads it and pass -o data.path=PATH"
            )
        return config  # read_table names the missing file
    target = Path(path)
    if inside_job:
        storage = config.study.storage_path
        if storage is None or "://" in storage:
            raise DataError(
                f"{path}: the embedded benchmark is not uploaded with --working-dir; write it with `dtgan data synth "
                "--out DIR` where every node reads it and pass -o data.path=DIR/benchmark.parquet"
            )
        target = Path(storage) / BENCHMARK_IN_STORAGE
    if not target.is_file():
        log.warning(
            "%s is missing: synthesising the embedded benchmark there (`dtgan data synth`, seed 0)", target
        )
        synthesize_benchmark(str(target))
    return apply_overrides(config, {"data": {"path": str(target)}})
