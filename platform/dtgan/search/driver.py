"""The study driver shared by ``experiments/*.py``: arguments, MLflow parent run, Ray, the final table and report.

The driver creates the MLflow store, experiment and parent run before any trial starts (concurrent creation
corrupts sqlite), makes every path absolute (Tune trials run in their own folders), and at the end closes
orphaned trial runs, registers the best generator, logs the report to the parent run and prints it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dtgan import keys
from dtgan.config.loader import load_config
from dtgan.config.root import DTGANConfig
from dtgan.downstream.preflight import check_downstream
from dtgan.errors import ConfigError
from dtgan.provenance import collect_provenance
from dtgan.search.durable import ensure_embedded_benchmark, move_out_of_ray_working_dir
from dtgan.search.ladder import apply_overrides
from dtgan.search.signals import stands_in_for
from dtgan.search.spaces import load_search_space
from dtgan.search.study_extractor import pin_extractor
from dtgan.storage import Storage
from dtgan.tracking.tracker import RunTracker
from dtgan.utils.entry import run_entry_point
from dtgan.utils.lock import hold_lock_until_exit, release_lock

log = logging.getLogger(__name__)

RUN_NAME_TIME_FORMAT = "%Y%m%d-%H%M%S"
STORAGE_PATH_ENV = "DTGAN_STORAGE_PATH"  # set by the cluster (docs/interfaces.md "Cluster environment")
DEFAULT_STORAGE_PATH = "ray_results"


def study_arguments(description: str, default_preset: str) -> argparse.ArgumentParser:
    """``-c/--config`` (``--preset`` too), ``-o``, ``--resume [RUN]``, ``--address`` shared by every study script."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "-c",
        "--config",
        "--preset",  # the studies' earlier name, kept: `--preset smoke` still works
        dest="config",
        metavar="PRESET",
        default=default_preset,
        help=f"preset name (experiments/presets/NAME.yaml) or YAML path (default {default_preset}), as `dtgan -c`",
    )
    parser.add_argument(
        "-o",
        "--override",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="dotted config override, e.g. -o study.seeds=[1,2] (repeatable)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN_NAME",
        help="continue the latest (or the named) launch of this study: Tune restore, same MLflow runs",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster address; default $RAY_ADDRESS (set by `ray job submit`), else a local Ray",
    )
    parser.add_argument("--ray-temp-dir", default=None, help="temp folder of the local Ray (default Ray's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def absolute_paths(config: DTGANConfig) -> DTGANConfig:
    """Relative data, storage and cache paths made absolute against the driver's cwd (trials chdir)."""

    def absolute(path: str) -> str:
        return path if "://" in path else str(Path(path).expanduser().resolve())

    storage = config.study.storage_path or os.environ.get(STORAGE_PATH_ENV) or DEFAULT_STORAGE_PATH
    delta = {
        "data": {"path": absolute(config.data.path)},
        "study": {"storage_path": absolute(storage)},
        "evaluation": {"cache_dir": absolute(config.evaluation.cache_dir)},
        "train": {"out_dir": absolute(config.train.out_dir)},
    }
    if config.study.search_space is not None:
        delta["study"]["search_space"] = absolute(config.study.search_space)
    if config.downstream.held_out_data is not None:
        delta["downstream"] = {"held_out_data": absolute(config.downstream.held_out_data)}
    return apply_overrides(config, delta)


def resolve_run_name(storage_path: str, study_name: str, resume: bool | str) -> str:
    """A new launch gets ``<study>-<timestamp>``; ``--resume`` the latest such folder (or the one named), looked
    up in the storage (a local folder or a bucket: any machine can resume a launch)."""
    storage = Storage.at(storage_path)
    if isinstance(resume, str):
        if not storage.child(resume).is_dir():
            raise ConfigError(f"--resume {resume}: no such study run under {storage_path}")
        return resume
    if resume:
        launches = [name for name in storage.list_dirs() if name.startswith(f"{study_name}-")]
        if not launches:
            raise ConfigError(
                f"--resume: no earlier launch of study '{study_name}' under {storage_path}; run without --resume"
            )
        return launches[-1]
    return f"{study_name}-{time.strftime(RUN_NAME_TIME_FORMAT)}"


def study_name_of(config: DTGANConfig, kind: str) -> str:
    return config.study.name or f"{kind}-{config.preset or 'custom'}"


def preflight_study(config: DTGANConfig, kind: str, resume: bool | str) -> DTGANConfig:
    """Every check a study can make before its first side effect (launch folder, MLflow parent run, Ray):
    the data set is there and readable with known labels, the search space parses, ``--resume`` has a launch
    to continue, the storage is writable, the Inception weights (when found) pass their SHA-256 check and the
    study's FID extractor is fixed for every trial (search/study_extractor.py). Returns the config with absolute
    paths, none inside a Ray job's temporary working dir; the embedded benchmark is synthesised where the
    config names it and it is missing (search/durable.py)."""
    from dtgan.data.parquet_io import read_table

    given_data_path = config.data.path
    config = move_out_of_ray_working_dir(absolute_paths(config))
    config = ensure_embedded_benchmark(config, given_data_path)
    read_table(config.data.path, columns=["product", "defect", "split"])
    Storage.at(config.study.storage_path).check_usable()  # a bad URI, bucket or credentials: one line, now
    if config.study.search_space is not None:
        load_search_space(config.study.search_space)
    resolve_run_name(config.study.storage_path, study_name_of(config, kind), resume)
    if kind != "augmentation":  # the trials score FID/KID: one extractor for all; bad weights fail now
        config = pin_extractor(config)
    return config


def check_study_config(config: DTGANConfig, early_stopping: bool) -> None:
    """Cross-section checks the study sections cannot make alone."""
    every = config.study.intermediate_fid_every_steps
    if every is not None and every % config.train.checkpoint_every_steps:
        raise ConfigError(
            f"study.intermediate_fid_every_steps={every} must be a multiple of "
            f"train.checkpoint_every_steps={config.train.checkpoint_every_steps} (the FID is read from checkpoints)"
        )
    objectives = config.study.objectives
    if early_stopping and every is not None and len(objectives) == 1 and not stands_in_for(config):
        # Optuna reads the objective from every intermediate result: the signal must stand in for it.
        signal = config.study.intermediate_signal
        estimates = keys.fid_key("mix") if signal == "fid_mix" else "a downstream error"
        raise ConfigError(
            f"study.intermediate_signal={signal} estimates {estimates} only, not the objective "
            f"{objectives[0].metric}; set study.intermediate_fid_every_steps=null and study.scheduler=fifo"
        )
    if early_stopping and config.study.scheduler == "asha" and every is None:
        raise ConfigError(
            "study.scheduler=asha needs study.intermediate_fid_every_steps (the early-stopping signal)"
        )
    if config.study.run_downstream:  # backbone and weights before any trial trains a generator
        check_downstream(config.downstream, checkpoint="the trial's generator")


@dataclass
class StudyLaunch:
    """A study about to run: its config, names, MLflow parent run and where its files go."""

    config: DTGANConfig
    kind: str
    study_name: str
    run_name: str
    tracker: RunTracker
    parent_run_id: str
    experiment_name: str
    storage_path: str
    resumed: bool

    @property
    def run_storage(self) -> Storage:
        """``<storage>/<run name>``: Tune's state, the trials' run folders (``runs/<trial key>/``), shared files."""
        return Storage.at(self.storage_path).child(self.run_name)

    @property
    def runs_uri(self) -> str:
        return self.run_storage.child("runs").uri


def launch_study(
    config: DTGANConfig,
    kind: str,
    resume: bool | str,
    tags: dict[str, str] | None = None,
    varied: tuple[str, ...] = (),
    description: str | None = None,
) -> StudyLaunch:
    """Resolve names, create the MLflow store, experiment and parent run (found again on ``--resume``).

    The parent run logs the study: the config's params except the ``varied`` keys, which each trial sets
    (e.g. ``model.ablation`` and the toggles of a ladder), and ``description`` as its note until the study
    ends and the summary replaces it.
    """
    from dtgan.tracking.mlflow.runs import config_params, init_tracking

    config = absolute_paths(config)
    study_name = study_name_of(config, kind)
    storage = config.study.storage_path
    run_name = resolve_run_name(storage, study_name, resume)
    launch_storage = Storage.at(storage).child(run_name)
    if (
        launch_storage.is_local
    ):  # one launch at a time writes it (a bucket has no locks: one driver per launch)
        hold_lock_until_exit(launch_storage.local_path, "study folder")
    launch_storage.makedirs()
    tracker = init_tracking(config.tracking, study=study_name)
    params = {k: v for k, v in config_params(config).items() if k not in varied}
    study_run = tracker.start_study(
        study_name,
        resume_key=run_name,
        tags={keys.TAG_STUDY_KIND: kind, keys.TAG_NOTE: description, **(tags or {})},
        params=params,
        provenance=collect_provenance(config.train.seed),
    )
    log.info(
        "%s study '%s' (%s), MLflow %s, parent run %s",
        "resuming" if study_run.resumed else "starting",
        study_name,
        run_name,
        tracker.tracking_uri,
        study_run.run_id,
    )
    return StudyLaunch(
        config,
        kind,
        study_name,
        run_name,
        tracker,
        study_run.run_id,
        study_run.experiment_name,
        storage,
        study_run.resumed,
    )


def finish_study(launch: StudyLaunch, status: str, error: BaseException | str | None = None) -> None:
    """Close orphaned trial runs (ASHA stops, killed trials) and end the parent run."""
    closed = launch.tracker.close_orphans(launch.parent_run_id)
    if closed:
        log.info("closed %d trial run(s) left RUNNING (stopped trials) as KILLED", len(closed))
    launch.tracker.end_run(launch.parent_run_id, status, error=error)
    if launch.run_storage.is_local:  # the launch folder is free for a --resume from another process
        release_lock(launch.run_storage.local_path)


@contextlib.contextmanager
def failing_study(launch: StudyLaunch) -> Iterator[None]:
    """The body of a launched study: when it raises, ``finish_study`` FAILED (KILLED on Ctrl-C/SystemExit) with
    the error, then the error goes on. Ending it FINISHED stays with the caller (after its report)."""
    from dtgan.tracking.mlflow.runs import ended_on_error  # MLflow: loaded by launch_study already

    with ended_on_error(lambda status, exc: finish_study(launch, status, error=exc)):
        yield


def log_study_report(launch: StudyLaunch) -> str | None:
    """Build the comparison tables from MLflow, log them to the parent run, return the Markdown."""
    report = study_report(launch)
    return None if report is None else report.markdown(comparisons=False)  # pairwise tables: in report.md


def study_report(launch: StudyLaunch):
    """Build the comparison tables from MLflow and log them to the parent run; the Report, or None."""
    from dtgan.tracking.mlflow.reading import log_report_to_run
    from dtgan.tracking.report.build import build_report
    from dtgan.tracking.report.config import ReportConfig
    from dtgan.tracking.report.errors import ReportError

    config = ReportConfig(bootstrap_samples=launch.config.study.report_bootstrap_samples)
    try:
        report = build_report(
            launch.experiment_name, launch.tracker.tracking_uri, launch.parent_run_id, config
        )
    except ReportError as exc:
        log.warning("no report: %s", exc)
        return None
    log_report_to_run(report, launch.parent_run_id, launch.tracker.tracking_uri)
    return report


def runs_table_url(base: str, experiment_id: str, parent_run_id: str) -> str:
    """The study's runs table in the MLflow UI (not MLflow 3's GenAI overview), the parent's runs only."""
    return (
        f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
        f"&searchFilter=tags.%60mlflow.parentRunId%60%20%3D%20%27{parent_run_id}%27"
    )


def where_to_look(launch: StudyLaunch) -> str:
    """How to open the study in the MLflow UI: the runs table of this study's trials."""
    uri = launch.tracker.tracking_uri
    experiment_id = launch.tracker.experiment_id(launch.experiment_name)
    if uri.startswith("http"):
        start, base = "", uri
    else:
        start, base = f"`mlflow ui --backend-store-uri {uri}`, then ", "http://127.0.0.1:5000"
    return (
        f"MLflow: {start}{runs_table_url(base, experiment_id, launch.parent_run_id)} "
        f"(experiment '{launch.experiment_name}', study run {launch.parent_run_id}: its description holds "
        f"the summary); resume with --resume {launch.run_name}"
    )


def main_guard(
    body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> int:
    """Parse, set up logging, run ``body``; user errors exit 2 with one line, Ctrl-C 130."""
    return run_entry_point(
        body, parser.parse_args(argv), prefix="", interrupted="interrupted; continue with --resume"
    )


def load_study_config(args: argparse.Namespace) -> DTGANConfig:
    return load_config(args.config, args.override)
