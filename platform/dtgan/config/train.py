"""Config of the training loop: steps, batch, seeds, EMA, intervals, run folder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dtgan.config.base import Section
from dtgan.config.performance import PerformanceConfig
from dtgan.names import check_run_name


class TrainConfig(Section):
    """The single-process loop (docs/model.md#optimisation, docs/model.md#training-procedure). Intervals are in steps (iterations)."""

    seed: int = Field(777, ge=0, description="seed of Python, NumPy, torch and every sampler")
    total_steps: int = Field(100_000, ge=1, description="training iterations")
    batch_size: int = Field(4, ge=1, description="global batch size (paper: 4)")
    ema_beta: float = Field(
        0.999, ge=0.0, le=1.0, description="EMA decay of G, M and E (the most it reaches with ema_rampup)"
    )
    ema_rampup: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="StyleGAN2-ADA's EMA ramp-up: the EMA's half-life is at most this fraction of the images seen "
        "so far, so that a short run's EMA follows its generator; null = StarGAN's constant ema_beta from step 1",
    )
    ema_init: Literal["before_he_init", "after_he_init"] = Field(
        "before_he_init",
        description="StarGAN copies the EMA nets before He init (they start from PyTorch's default init)",
    )
    log_every_steps: int | Literal["auto"] = Field(
        "auto",
        description="steps between logged losses (each log reads the loss terms back from the device); auto = a "
        "per-device cadence of a few seconds: 10 on a CPU, 100 on a GPU (training.loop.log_interval)",
    )

    @field_validator("log_every_steps")
    @classmethod
    def _positive_interval(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be >= 1 or 'auto'")
        return value

    sample_every_steps: int = Field(5_000, ge=1, description="steps between sample grids")
    checkpoint_every_steps: int = Field(10_000, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1, description="how many latest checkpoints to keep")
    checkpoint_at_start: bool = Field(
        False,
        description="also write the step-0 checkpoint (the initialised networks, never pruned): the 'not trained' "
        "end of FID curves and report scales",
    )
    out_dir: str = Field("runs", description="folder (or storage URI) holding one folder per run")
    run_name: str | None = Field(
        None, description="run folder name; null = derived from preset, step and seed"
    )

    @field_validator("run_name")
    @classmethod
    def _one_folder(cls, value: str | None) -> str | None:
        return value if value is None else check_run_name(value)

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
