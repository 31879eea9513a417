"""The augmentation study (paper Tables 2, 3, 8) on a trained generator: arms x data set sizes x seeds.

The driver prepares the study data once (real splits + synthetic sets from the checkpoint), then runs the
classifier jobs as Ray tasks (``study.gpus_per_classifier`` GPUs each). Each (size, seed) is one MLflow
child run with ``downstream/error_{arm}_{backbone}`` as a fraction, the tag ``seed`` and the param
``downstream.normals_per_class``: what the report's classifier tables read. A resumed study skips the runs
that finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dtgan import keys
from dtgan.config.root import DTGANConfig
from dtgan.downstream.preflight import check_downstream, weights_label
from dtgan.errors import ConfigError
from dtgan.search.driver import (
    StudyLaunch,
    failing_study,
    finish_study,
    launch_study,
    log_study_report,
    preflight_study,
    where_to_look,
)

log = logging.getLogger(__name__)

STUDY_DATA_FILE = "study_data.pt"
METHOD_OF_STEP = {"a": "stargan_v2", "g": "dtgan"}


def method_name(config: DTGANConfig) -> str:
    """The generator's row label: ``dtgan`` (step g), ``stargan_v2`` (step a), else ``ladder_<step>``."""
    step = config.model.ablation
    return METHOD_OF_STEP.get(step, f"ladder_{step}")


def _prepare(launch: StudyLaunch, checkpoint: str | None) -> str:
    """Write the study data once per launch into the study storage (a resumed launch reuses it); its location."""
    from dtgan.downstream.prepare import prepare_study_data
    from dtgan.training.checkpoint import load_inference_nets
    from dtgan.training.environment import resolve_device

    stored = launch.run_storage
    if stored.is_file(STUDY_DATA_FILE):
        return stored.child(STUDY_DATA_FILE).uri
    path = Path(tempfile.mkdtemp(prefix="dtgan-study-data-")) / STUDY_DATA_FILE
    cfg = launch.config.downstream
    nets = None
    if cfg.synthetic_arms:
        nets = load_inference_nets(checkpoint, device=resolve_device(cfg.device, "downstream.device"))
    prepare_study_data(
        cfg,
        launch.config.data.path,
        nets=nets,
        checkpoint=checkpoint,
        crop_paste_cfg=launch.config.crop_paste,
    ).save(path)
    # In the study storage: the classifier jobs read it from any node, a resumed launch reuses it.
    stored.upload_file(path, STUDY_DATA_FILE)
    shutil.rmtree(path.parent, ignore_errors=True)
    return stored.child(STUDY_DATA_FILE).uri


def _group_metrics(results: list[dict], backbone: str) -> dict[str, float]:
    """One seed's classifiers of one size: test error per arm as a fraction in [0, 1]."""
    return {keys.downstream_key(r["cell"]["arm"], backbone): r["test_error_pct"] / 100.0 for r in results}


def preflight_augmentation(
    config: DTGANConfig, checkpoint: str | None, resume: bool | str
) -> tuple[DTGANConfig, DTGANConfig]:
    """Every check before the study's first side effect: the study's shape, the checkpoint (it loads, tensors
    finite), the data and ``--resume`` (``preflight_study``). Returns (the study's config with absolute paths,
    the generator's config)."""
    cfg = config.downstream
    if cfg.products != (keys.SCOPE_ALL,) or cfg.defect_sources != (keys.SCOPE_ALL,):
        raise ConfigError(
            "experiments/augmentation.py runs Tables 2/3/8 (downstream.products=[all], "
            "defect_sources=[all]); run cross-domain studies with `dtgan downstream`"
        )
    if cfg.synthetic_arms and checkpoint is None:  # this script's flag, not dtgan downstream's positional
        raise ConfigError(
            f"downstream.arms {list(cfg.synthetic_arms)} need --checkpoint CHECKPOINT_OR_RUN; pass one, or keep "
            "the arms without a generator: -o 'downstream.arms=[no_aug,trad_aug,crop_paste]'"
        )
    check_downstream(cfg, checkpoint)  # backbone, weights, checkpoint: before the launch and any image
    generator_config = config
    if checkpoint is not None:
        from dtgan.training.checkpoint import load_inference_nets

        generator_config = load_inference_nets(checkpoint).config
    return preflight_study(config, "augmentation", resume), generator_config


def run_augmentation(
    config: DTGANConfig,
    checkpoint: str | None,
    method: str | None = None,
    resume: bool | str = False,
    address: str | None = None,
    temp_dir: str | None = None,
) -> tuple[StudyLaunch, list[dict[str, Any]], str]:
    """Run (or resume) the study; rows per (size, seed) and the printed text.

    Config, checkpoint, data and the cluster's resources are checked before the launch folder and the MLflow
    parent run exist; once the parent run exists, any failure ends it FAILED (KILLED on Ctrl-C)."""
    from dtgan.downstream.study import markdown_table, summarize
    from dtgan.search import ray_tune

    config, generator_config = preflight_augmentation(config, checkpoint, resume)
    method = method or method_name(generator_config)
    with ray_tune.ray_session(config.study, address=address, temp_dir=temp_dir) as started:
        local = started and not (address or os.environ.get("RAY_ADDRESS"))  # no autoscaler adds nodes
        ray_tune.check_job_resources(config.study.gpus_per_classifier, autoscaled=not local)
        launch = launch_study(
            config, "augmentation", resume, tags={keys.TAG_CHECKPOINT: checkpoint, keys.TAG_VARIANT: method}
        )
        with failing_study(launch):
            rows, all_results, markdown = _run_launched(launch, checkpoint, method)
    finish_study(launch, "FINISHED")
    cfg = launch.config.downstream
    text = [f"## {launch.study_name}: {len(rows)} (size, seed) runs of method '{method}'"]
    if all_results:
        cells, _ = summarize(all_results, cfg.backbone, len(cfg.normal_images_per_product) > 1)
        text += ["", markdown_table(cells, cfg.backbone)]
    if markdown:
        text += ["", markdown]
    text += ["", where_to_look(launch)]
    return launch, rows, "\n".join(text)


def _run_launched(
    launch: StudyLaunch, checkpoint: str | None, method: str
) -> tuple[list[dict[str, Any]], list[dict], str | None]:
    """The launched study's (size, seed) groups, each one MLflow child run; then the report (Markdown)."""
    from dtgan.downstream.study import plan_jobs
    from dtgan.search import ray_tune

    cfg, tracker = launch.config.downstream, launch.tracker
    map_fn = ray_tune.downstream_map_fn(launch.config.study.gpus_per_classifier)
    rows, all_results = [], []
    specs = plan_jobs(cfg, _prepare(launch, checkpoint))
    groups: dict[tuple[int, int], list] = {}
    for spec in specs:
        groups.setdefault((spec.cell.normal_images_per_product, spec.seed), []).append(spec)
    for (size, seed), group in groups.items():
        trial_key = f"n{size}-seed{seed}"
        with tracker.trial(
            launch.parent_run_id,
            trial_key,
            launch.config,
            tags={keys.TAG_VARIANT: method, keys.TAG_SEED: seed, keys.TAG_STUDY: launch.study_name},
        ) as run:
            if run.finished:
                rows.append(
                    {"trial": trial_key, "status": "completed (earlier launch)", "run_id": run.run_id}
                )
                continue
            tracker.log_params(run.run_id, {keys.PARAM_NORMALS_PER_CLASS: str(size)})
            results = list(map_fn(_job, group))
            weights = sorted({weights_label(r["pretrained"]) for r in results})
            tracker.set_tags(run.run_id, {keys.TAG_CLASSIFIER_WEIGHTS: " / ".join(weights)})
            tracker.log_metrics(run.run_id, _group_metrics(results, cfg.backbone), step=0)
            tracker.log_dict(
                run.run_id,
                {"jobs": results, "specs": [asdict(s) for s in group]},
                keys.DOWNSTREAM_JOBS_ARTIFACT,
            )
        all_results += results
        rows.append({"trial": trial_key, "status": "completed", "run_id": run.run_id})
    return rows, all_results, log_study_report(launch)


def _job(spec) -> dict:
    """A picklable reference to the classifier job (imported on the worker)."""
    from dtgan.downstream.study import run_job

    return run_job(spec)
