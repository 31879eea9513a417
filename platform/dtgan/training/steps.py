"""One training iteration (docs/model.md#training-step, docs/model.md#training-procedure): D latent, D reference, G latent (G, M, E), G reference (G), EMA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from dtgan.config.root import DTGANConfig
from dtgan.losses.objectives import (
    Batch,
    Guidance,
    Sources,
    Terms,
    discriminator_loss,
    encode_sources,
    generator_loss,
)
from dtgan.training.ema import ema_update
from dtgan.training.environment import no_gradient_sync
from dtgan.training.performance import Performance, autocast
from dtgan.training.schedules import ema_beta, lambda_ds, lambda_self_rec, r1_due
from dtgan.training.state import TrainState

# Short guidance names used in the term keys: d/latent/adv_real, g/ref/cyc.
GUIDANCE_TAG = {"latent": "latent", "reference": "ref"}
# Which networks each G step updates (docs/model.md#training-step: E's gradients in the reference step are discarded).
G_STEP_UPDATES = {"latent": ("generator", "mapping_network", "style_encoder"), "reference": ("generator",)}


@contextlib.contextmanager
def frozen(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Temporarily stop parameter gradients of ``modules`` (inputs still get gradients through them).

    Networks that a step does not update then neither build parameter-gradient graphs nor accumulate
    stale ``.grad``s; the maths of the updated networks is unchanged.
    """
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _tag(terms: Terms, guidance: Guidance) -> Terms:
    """``d/adv_real`` -> ``d/latent/adv_real``; values detached for logging."""
    tag = GUIDANCE_TAG[guidance]
    return {f"{k.split('/', 1)[0]}/{tag}/{k.split('/', 1)[1]}": v.detach() for k, v in terms.items()}


def _autocast(config: DTGANConfig, batch: Batch):
    """bf16 autocast of a step's forward passes when the performance options, resolved for the device, say so."""
    device = batch.x_real.device
    return autocast(Performance.resolve(config.train.performance, device).bf16_autocast, device)


def _apply(total: torch.Tensor, state: TrainState, names: tuple[str, ...], sync_gradients) -> None:
    optimizers = [state.optimizers[n] for n in names]
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    total.backward()
    sync_gradients([state.nets[n] for n in names])
    for opt in optimizers:
        opt.step()


def d_step(
    state: TrainState,
    batch: Batch,
    guidance: Guidance,
    config: DTGANConfig,
    sync_gradients=no_gradient_sync,
    sources: Sources | None = None,
) -> Terms:
    """Update D on reals vs. fakes made with M(z) (latent) or E(x_ref) (reference); R1 on the steps
    ``loss.r1_every`` names (every step by default). ``sources``: G's encoding of x_real, shared by the D steps."""
    nets = state.nets
    with frozen([nets.generator, nets.mapping_network, nets.style_encoder]), _autocast(config, batch):
        total, terms = discriminator_loss(
            nets,
            batch,
            guidance,
            config.loss,
            config.model.toggles,
            r1_due(state.step, config.loss),
            sources,
        )
    _apply(total, state, ("discriminator",), sync_gradients)
    return _tag(terms, guidance)


def g_step(
    state: TrainState, batch: Batch, guidance: Guidance, config: DTGANConfig, sync_gradients=no_gradient_sync
) -> Terms:
    """Update G, M, E (latent) or G only (reference) on the G side of Eq. 8."""
    nets = state.nets
    updates = G_STEP_UPDATES[guidance]
    fixed = [m for name, m in nets.items() if name not in updates]
    with frozen(fixed), _autocast(config, batch):
        loss_cfg = config.loss
        if loss_cfg.self_rec_final_fraction != 1.0:  # the scheduled weight of this step
            loss_cfg = loss_cfg.model_copy(update={"lambda_self_rec": lambda_self_rec(state.step, loss_cfg)})
        total, terms = generator_loss(
            nets, batch, guidance, loss_cfg, config.model.toggles, lambda_ds(state.step, config.loss)
        )
    _apply(total, state, updates, sync_gradients)
    return _tag(terms, guidance)


def train_step(
    state: TrainState, batch: Batch, config: DTGANConfig, sync_gradients=no_gradient_sync
) -> Terms:
    """One iteration; returns every named term (detached) and advances ``state.step`` by one."""
    terms: Terms = {}
    with _autocast(config, batch):  # G is the same in both D steps: encode x_real (and its BG part) once
        sources = encode_sources(state.nets.generator, batch.x_real)
    terms.update(d_step(state, batch, "latent", config, sync_gradients, sources))
    terms.update(d_step(state, batch, "reference", config, sync_gradients, sources))
    terms.update(g_step(state, batch, "latent", config, sync_gradients))
    terms.update(g_step(state, batch, "reference", config, sync_gradients))
    ema_update(state.nets, state.nets_ema, ema_beta(state.step, config.train))
    state.step += 1
    return terms
