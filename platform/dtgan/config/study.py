"""Config of a study (ablation ladder, lambda search, augmentation study): trials, resources, scheduler, objectives."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dtgan import keys
from dtgan.config.base import Section
from dtgan.config.model import LADDER_STEPS

Variant = Literal["a", "b", "c", "d", "e", "f", "g"]


class Objective(Section):
    """One metric a search optimises, read from the trial's final result."""

    metric: str = Field(
        ..., min_length=1, description="metric key, e.g. eval/fid_mix or downstream/error_mix_resnet10t_mean"
    )
    mode: Literal["min", "max"] = Field("min", description="minimise or maximise the metric")


class StudyConfig(Section):
    """How a study runs its trials on Ray Tune; every trial is train -> evaluate -> optional downstream study."""

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._=,+:@-]{1,120}$",
        description="study name (MLflow experiment, Ray run prefix); null = '<study kind>-<preset>'",
    )
    variants: tuple[Variant, ...] = Field(
        LADDER_STEPS,
        min_length=1,
        description="ablation ladder steps (a)=StarGAN v2 ... (g)=DT-GAN, one trial each per seed",
    )
    seeds: tuple[int, ...] = Field(
        (777,), min_length=1, description="train.seed of each trial (variants x seeds)"
    )
    max_concurrent_trials: int = Field(1, ge=1, description="trials running at once")
    gpus_per_trial: float = Field(
        0.0,
        ge=0.0,
        description="GPUs of a trial that trains in its own process (distributed.workers <= 1); fractions (0.5) "
        "pack trials onto one GPU. Multi-worker trials take distributed.use_gpu per worker instead",
    )
    gpus_per_classifier: float = Field(
        0.0, ge=0.0, description="GPUs of each downstream classifier job (a Ray task); 0 = CPU"
    )
    max_trial_failures: int = Field(
        0,
        ge=0,
        description="times a trial that failed or lost its node (a preempted spot instance) is started again, from "
        "its last stored checkpoint and in the same MLflow run; the cluster presets set 3",
    )
    driver_resource: str = Field(
        "TRAIN_DRIVER",
        min_length=1,
        description="custom Ray resource a multi-worker trial's driver holds instead of a CPU (clusters offer it "
        "on the head node); in-process trials hold only the CPU/GPU they train on",
    )
    local_num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local Ray started when no cluster address is given; null = all"
    )
    scheduler: Literal["fifo", "asha"] = Field(
        "asha",
        description="asha stops weak trials early on the intermediate FID (single objective only); fifo runs all",
    )
    asha_grace_period_reports: int = Field(
        1, ge=1, description="intermediate reports every trial gets before ASHA may stop it"
    )
    asha_reduction_factor: float = Field(
        2.0, gt=1.0, description="ASHA keeps 1/reduction_factor of the trials per rung"
    )
    objectives: tuple[Objective, ...] = Field(
        (Objective(metric=keys.fid_key("mix"), mode="min"),),
        min_length=1,
        max_length=2,
        description="one objective, or two (e.g. FID-mix and classifier error) for a Pareto front",
    )
    search_space: str | None = Field(
        None, description="YAML search space (experiments/search/*.yaml): dotted config key -> distribution"
    )
    num_samples: int = Field(8, ge=1, description="trials a search samples")
    search_seed: int = Field(0, ge=0, description="seed of Optuna's TPE sampler")
    intermediate_fid_every_steps: int | None = Field(
        None,
        ge=1,
        description="steps between cheap FID-mix reports for early stopping (a multiple of train.checkpoint_every_steps); null = none",
    )
    intermediate_signal: Literal["fid_mix", "defect_miss", "downstream_probe"] = Field(
        "fid_mix",
        description="the cheap early-stopping signal every intermediate_fid_every_steps: fid_mix = FID-mix on "
        "few images (stands in for the FID-mix objective); defect_miss = % of the synthetic mix images the data "
        "set's defect classifier (trained on real images) does not assign to the intended defect, 100 - defect "
        "recall; downstream_probe = validation error % of the downstream study's mix arm on the checkpoint, "
        "intermediate_probe_seeds classifier seeds (a classification-accuracy score; both stand in for a "
        "downstream error objective)",
    )
    intermediate_probe_seeds: int = Field(
        1, ge=1, description="classifier seeds of the downstream_probe signal (each one downstream training)"
    )
    intermediate_fid_images_per_cell: int = Field(
        32, ge=2, description="synthetic images per product x defect for the cheap intermediate FID-mix"
    )
    storage_path: str | None = Field(
        None,
        description="folder (or s3:// URI) of Ray Tune runs, trial run folders and checkpoints; "
        "null = $DTGAN_STORAGE_PATH, else ./ray_results",
    )
    run_downstream: bool = Field(
        False, description="run the downstream classifier study (downstream section) in each trial"
    )
    report_bootstrap_samples: int = Field(
        200, ge=10, description="bootstrap replicates of the study's final report"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
            raise ValueError("seeds must be distinct non-negative integers")
        return seeds

    @field_validator("variants")
    @classmethod
    def _distinct_variants(cls, variants: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(variants)) != len(variants):
            raise ValueError("variants must be distinct ladder steps")
        return variants

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        if len(self.objectives) == 2 and self.scheduler == "asha":
            # Optuna records an ASHA-stopped trial as COMPLETE with its last values, which distorts the front.
            raise ValueError(
                "scheduler=asha works with one objective only; set study.scheduler=fifo for two objectives"
            )
        if len({o.metric for o in self.objectives}) != len(self.objectives):
            raise ValueError("objectives must name distinct metrics")
        return self

    @property
    def objective(self) -> Objective:
        """The first (primary) objective: what ASHA and single-objective searches optimise."""
        return self.objectives[0]
