"""Schedules as pure functions of the step, so that resuming reproduces them exactly (never mutated state)."""

from __future__ import annotations

from dtgan.config.loss import LossConfig
from dtgan.config.train import TrainConfig


def lambda_ds(step: int, loss_cfg: LossConfig) -> float:
    """Weight of the diversity loss at iteration ``step`` (0-based): linear from lambda_ds to 0 over ds_decay_steps.

    StarGAN v2 uses lambda_ds at iteration 0 and subtracts lambda_ds / ds_iter after every iteration.
    """
    remaining = max(0.0, 1.0 - step / loss_cfg.ds_decay_steps)
    return loss_cfg.lambda_ds * remaining


def lambda_self_rec(step: int, loss_cfg: LossConfig) -> float:
    """Weight of the self-reconstruction term at iteration ``step`` (0-based): linear from lambda_self_rec to
    lambda_self_rec * self_rec_final_fraction over ds_decay_steps, then constant."""
    progress = min(1.0, step / loss_cfg.ds_decay_steps)
    return loss_cfg.lambda_self_rec * (1.0 - progress * (1.0 - loss_cfg.self_rec_final_fraction))


def ema_beta(step: int, train_cfg: TrainConfig) -> float:
    """EMA decay of the update after iteration ``step`` (0-based).

    Constant ``ema_beta`` (StarGAN v2) without ramp-up. With ``ema_rampup`` r (StyleGAN2-ADA), the EMA's
    half-life in images is capped at r times the images seen, (step + 1) * batch, so the decay is
    0.5 ** (1 / (r * (step + 1))), independent of the batch size, until it reaches ``ema_beta``: with r = 0.05
    it is 0.87 at step 100, 0.986 at step 1000 and 0.999 from step 13,856 on.
    """
    if train_cfg.ema_rampup is None:
        return train_cfg.ema_beta
    return min(train_cfg.ema_beta, 0.5 ** (1.0 / (train_cfg.ema_rampup * (step + 1))))


def r1_due(step: int, loss_cfg: LossConfig) -> bool:
    """Whether the D steps of iteration ``step`` (0-based) carry the R1 penalty: every ``r1_every``-th, from 0."""
    return step % loss_cfg.r1_every == 0
