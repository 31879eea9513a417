"""The ablation ladder and the lambda search end to end: launch, run the trials on Ray Tune, summarise, report."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dtgan import keys
from dtgan.config.model import TOGGLES
from dtgan.config.root import DTGANConfig
from dtgan.config.study import Objective
from dtgan.errors import ConfigError
from dtgan.provenance import git_state
from dtgan.search.driver import (
    StudyLaunch,
    absolute_paths,
    check_study_config,
    failing_study,
    finish_study,
    launch_study,
    preflight_study,
    study_report,
    where_to_look,
)
from dtgan.search.ladder import TrialSpec, ladder_trials
from dtgan.search.pareto import pareto_front
from dtgan.search.search_points import canonical_point, earlier_search_points
from dtgan.search.spaces import Dimension, load_search_space
from dtgan.search.trial import TrialContext, TrialOutcome
from dtgan.storage import fetch_file
from dtgan.tracking.trial_rows import TrialRow, TrialStatus

log = logging.getLogger(__name__)

# What each ladder trial sets itself: the parent run logs the study's other params, not these.
LADDER_VARIED = ("model.ablation", *(f"model.{t}" for t in TOGGLES), "train.seed", "train.run_name")
SUMMARY_METRICS = (
    keys.fid_key("mix"),
    keys.fid_key("latent"),
    keys.fid_key("reference"),
    keys.kid_key("mix"),
)


def _context(launch: StudyLaunch, earlier: list[tuple[str, dict[str, Any]]] = ()) -> TrialContext:
    study = launch.config.study
    return TrialContext(
        earlier_points=tuple((key, canonical_point(point)) for key, point in earlier),
        tracker=launch.tracker,
        parent_run_id=launch.parent_run_id,
        study=launch.study_name,
        runs_dir=launch.runs_uri,
        intermediate_fid_every_steps=study.intermediate_fid_every_steps,
        intermediate_fid_images_per_cell=study.intermediate_fid_images_per_cell,
        git_state=git_state(),
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def trials_table(rows: list[TrialRow], columns: list[str]) -> str:
    """A Markdown table of the trials: key, status and the chosen metrics."""
    lines = ["| trial | status | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for row in rows:
        lines.append(
            f"| {row.trial} | {row.status} | " + " | ".join(_fmt(row.metrics.get(c)) for c in columns) + " |"
        )
    return "\n".join(lines)


def _best(rows: list[TrialRow], objective: Objective) -> TrialRow | None:
    """The completed trial with the best value of the primary objective, or None."""
    scored = [r for r in rows if r.status == TrialStatus.COMPLETED and objective.metric in r.metrics]
    sign = 1.0 if objective.mode == "min" else -1.0
    return min(scored, key=lambda r: sign * r.metrics[objective.metric]) if scored else None


def _row(outcome: TrialOutcome, described: dict[str, str] | None = None) -> TrialRow:
    """The study's row of one trial; ``described``: its ``variant`` and ``run_name`` (ladder trials)."""
    return TrialRow(
        trial=outcome.trial_key,
        trial_id=outcome.trial_id,
        status=outcome.status,
        error=outcome.error,
        params=outcome.params,
        metrics=outcome.metrics,
        run_id=outcome.run_id,
        checkpoint=outcome.checkpoint,
        **(described or {}),
    )


def _summarise(launch: StudyLaunch, rows: list[TrialRow]) -> TrialRow | None:
    """Log the rows and the best completed trial (primary objective) to the parent run; the best generator
    is registered. The best row, or None."""
    objective = launch.config.study.objective
    best = _best(rows, objective)
    tracker = launch.tracker
    if best is not None:
        tracker.log_metrics(
            launch.parent_run_id, {keys.best_key(objective.metric): best.metrics[objective.metric]}, 0
        )
        tracker.set_tags(
            launch.parent_run_id, {keys.TAG_BEST_TRIAL: best.trial, keys.TAG_BEST_RUN_ID: best.run_id}
        )
        if best.run_id and best.checkpoint:
            with tempfile.TemporaryDirectory(prefix="dtgan-best-") as tmp:
                # The trial wrote it on its node: from the study storage (a bucket on a cluster).
                checkpoint = fetch_file(best.checkpoint, Path(tmp))
                registered = tracker.log_best_checkpoint(best.run_id, checkpoint)
            if registered is not None:
                log.info(
                    "best generator (%s) registered as %s version %s",
                    best.trial,
                    registered.name,
                    registered.version,
                )
    counts = {status: sum(r.status == status for r in rows) for status in TrialStatus}
    tracker.log_metrics(launch.parent_run_id, {f"trials_{s}": n for s, n in counts.items()}, 0)
    records = [row.record() for row in rows]
    tracker.log_text(launch.parent_run_id, json.dumps(records, indent=2, default=str), keys.TRIALS_ARTIFACT)
    return best


@contextlib.contextmanager
def _ray_session(config: DTGANConfig, address: str | None, temp_dir: str | None) -> Iterator[None]:
    """Ray connected (or started) and checked to offer what every trial holds; stopped on exit if started here."""
    from dtgan.search import ray_tune

    with ray_tune.ray_session(config.study, address=address, temp_dir=temp_dir):
        ray_tune.check_cluster_resources(config)
        yield


def _tune(
    launch: StudyLaunch,
    trainable: Callable[..., None],
    trials: list[TrialSpec] | None,
    space: list[Dimension] | None,
    early_stopping: bool,
) -> list[TrialOutcome]:
    """The study's trials on Tune: the fixed ``trials``, or a search over ``space``. A resumed search proposes its earlier launch's points again first (read from
    their JSON records in the storage), so that those trials keep their keys, MLflow runs and checkpoints."""
    from dtgan.search import ray_tune

    earlier = earlier_search_points(launch.runs_uri) if space is not None and launch.resumed else []
    if earlier:
        log.info("resuming the search: %d earlier trial(s) are proposed again first", len(earlier))
    return ray_tune.run_tune(
        ray_tune.bind(trainable, launch.config, _context(launch, earlier)),
        launch.config,
        launch.run_name,
        launch.storage_path,
        trials=trials,
        space=space,
        earlier_points=[point for _, point in earlier],
        early_stopping=early_stopping,
    )


def _describe_study(launch: StudyLaunch, rows: list[TrialRow], report) -> None:
    """The parent run's summary for the MLflow UI: the wide per-variant table (``log_table``, MLflow's
    Evaluation view) and the description (table, best variant with a link, what it establishes)."""
    from dtgan.tracking.summary import study_note, variants_table

    tracker, study = launch.tracker, launch.config.study
    table = variants_table(rows, report.cells() if report is not None else None)
    if not table.empty:
        tracker.log_table(launch.parent_run_id, table, keys.VARIANTS_TABLE_ARTIFACT)
    objective = study.objective
    best = _best(rows, objective)
    extractor = tracker.run_tag(best.run_id, keys.TAG_FID_EXTRACTOR) if best and best.run_id else None
    experiment_id = tracker.experiment_id(launch.experiment_name)
    note = study_note(
        kind=launch.kind,
        study=launch.study_name,
        experiment_id=experiment_id,
        table=table,
        rows=rows,
        best=best,
        objective=objective.metric,
        seeds=study.seeds,
        total_steps=launch.config.train.total_steps,
        fid_extractor=extractor,
    )
    tracker.set_tags(launch.parent_run_id, {keys.TAG_NOTE: note})


def _conclude(launch: StudyLaunch, rows: list[TrialRow], table_columns: list[str]) -> str:
    """End the parent run, log and print the report; the text printed."""
    completed = sum(r.status == TrialStatus.COMPLETED for r in rows)
    failed = [r for r in rows if r.status == TrialStatus.FAILED]
    report = study_report(launch)
    markdown = None if report is None else report.markdown(comparisons=False)  # pairwise tables: in report.md
    try:
        _describe_study(launch, rows, report)
    except Exception as exc:  # the summary is a convenience: the study's results are already logged
        log.warning("no study summary in MLflow: %s", exc)
    if completed:
        finish_study(launch, "FINISHED")
    else:
        finish_study(launch, "FAILED", error=failed[0].error if failed else "no trial completed")
    text = [
        f"## {launch.study_name}: {completed}/{len(rows)} trials completed",
        "",
        trials_table(rows, table_columns),
        "",
    ]
    for row in failed:
        text.append(f"- {row.trial} failed: {row.error}")
    if markdown:
        text += ["", markdown]
    text += ["", where_to_look(launch)]
    return "\n".join(text)


def run_ablation(
    config: DTGANConfig, resume: bool | str = False, address: str | None = None, temp_dir: str | None = None
) -> tuple[StudyLaunch, list[TrialRow], str]:
    """The ladder (a)-(g) x seeds, every trial to the end (no early stopping); rows and the printed text.

    Config, data and cluster are checked before the launch folder and the MLflow parent run exist."""
    from dtgan.search import ray_tune

    check_study_config(config, early_stopping=False)
    config = preflight_study(config, "ablation", resume)
    study = config.study
    described = (
        f"Ablation ladder ({', '.join(study.variants)}) x seed(s) {', '.join(map(str, study.seeds))}: "
        "one child run per variant and seed; the summary replaces this line when the study ends."
    )
    with _ray_session(config, address, temp_dir):
        launch = launch_study(config, "ablation", resume, varied=LADDER_VARIED, description=described)
        specs = ladder_trials(launch.config.study.variants, launch.config.study.seeds)
        names = {s.trial_key: {"variant": s.variant, "run_name": s.run_name} for s in specs}
        with failing_study(launch):
            outcomes = _tune(launch, ray_tune.ladder_trainable, specs, None, False)
            rows = [_row(o, names.get(o.trial_key)) for o in outcomes]
            _summarise(launch, rows)
    order = {s.trial_key: i for i, s in enumerate(specs)}
    rows.sort(key=lambda r: order.get(r.trial, len(order)))
    return launch, rows, _conclude(launch, rows, list(SUMMARY_METRICS))


def run_search(
    config: DTGANConfig, resume: bool | str = False, address: str | None = None, temp_dir: str | None = None
) -> tuple[StudyLaunch, list[TrialRow], str]:
    """Optuna TPE (through Tune) over the YAML space; ASHA on one objective, a Pareto front on two."""
    from dtgan.search import ray_tune

    study = config.study
    if study.search_space is None:
        raise ConfigError(
            "study.search_space is not set; pass -o study.search_space=experiments/search/lambdas.yaml"
        )
    check_study_config(config, early_stopping=True)
    config = preflight_study(config, "search", resume)
    objectives = keys.search_objectives_tag((o.metric, o.mode) for o in study.objectives)
    space = load_search_space(absolute_paths(config).study.search_space)
    varied = (*(dim.key for dim in space), "train.run_name")
    described = (
        f"Search over {', '.join(d.key for d in space)} ({study.num_samples} trials, objectives {objectives}); "
        "the summary replaces this line when the study ends."
    )
    with _ray_session(config, address, temp_dir):
        launch = launch_study(
            config,
            "search",
            resume,
            tags={keys.TAG_SEARCH_OBJECTIVES: objectives},
            varied=varied,
            description=described,
        )
        with failing_study(launch):
            outcomes = _tune(launch, ray_tune.search_trainable, None, space, True)
            rows = [_row(o) for o in outcomes]
            _summarise(launch, rows)
    metrics = [o.metric for o in study.objectives]
    columns = metrics + [k for k in SUMMARY_METRICS if k not in metrics]
    text_extra = []
    if len(metrics) == 2:
        # Only trials that ran to the end: a stopped trial's last values are not its final ones.
        points = {
            r.trial: [r.metrics[m] for m in metrics]
            for r in rows
            if r.status == TrialStatus.COMPLETED and all(m in r.metrics for m in metrics)
        }
        front = pareto_front(points, [o.mode for o in study.objectives])
        front_rows = [
            {
                "trial": t,
                **dict(zip(metrics, points[t])),
                "params": next(r.params for r in rows if r.trial == t),
            }
            for t in front
        ]
        launch.tracker.log_text(
            launch.parent_run_id, json.dumps(front_rows, indent=2, default=str), keys.PARETO_ARTIFACT
        )
        text_extra = ["", f"Pareto front ({' vs '.join(metrics)}): " + (", ".join(front) or "empty")]
    text_extra += ["", "Sampled parameters:"] + [
        f"- {r.trial}: {json.dumps(r.params, default=str)}" for r in rows
    ]
    text = _conclude(launch, rows, columns)
    return launch, rows, text + "\n".join(text_extra)
