"""Schedules as pure functions of the step, so that resuming reproduces them exactly (never mutated state)."""

from __future__ import annotations

from dtgan.config.loss import LossConfig


def lambda_ds(step: int, loss_cfg: LossConfig) -> float:
    """Weight of the diversity loss at iteration ``step`` (0-based): linear from lambda_ds to 0 over ds_decay_steps.

    StarGAN v2 uses lambda_ds at iteration 0 and subtracts lambda_ds / ds_iter after every iteration.
    """
    remaining = max(0.0, 1.0 - step / loss_cfg.ds_decay_steps)
    return loss_cfg.lambda_ds * remaining
