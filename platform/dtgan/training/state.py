"""TrainState: the networks, their EMA copies, the optimisers, the step and the z generator. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dtgan.config.root import DTGANConfig
from dtgan.models import build_nets
from dtgan.training.ema import make_ema_nets
from dtgan.training.environment import Environment
from dtgan.training.optimizers import build_optimizers
from dtgan.training.performance import Performance, apply_performance
from dtgan.training.rng import rank_seed, seed_everything


@dataclass
class TrainState:
    """Plain state of a run; ``step`` counts completed iterations. ``nets`` may hold prepared (wrapped)
    modules; checkpoints store the unwrapped ones."""

    nets: nn.ModuleDict  # generator, mapping_network, style_encoder, discriminator
    nets_ema: nn.ModuleDict  # generator, mapping_network, style_encoder
    optimizers: dict[str, torch.optim.Optimizer]
    z_generator: torch.Generator  # draws z_trg, z_trg2 (on the CPU, so runs match across devices)
    step: int = 0


def build_train_state(
    config: DTGANConfig, num_domains: int, num_products: int, env: Environment
) -> TrainState:
    """Seed, build the He-initialised nets (identical on every rank), their EMA copies and the optimisers."""

    seed_everything(config.train.seed)
    built = build_nets(config.model, num_domains=num_domains, num_products=num_products)
    nets_ema = make_ema_nets(built, config.train.ema_init).to(env.device)
    perf = Performance.resolve(config.train.performance, env.device)
    for name, module in nets_ema.items():  # the EMA update's multi-tensor kernels want matching layouts
        if name in perf.channels_last:
            module.to(memory_format=torch.channels_last)
    nets = nn.ModuleDict(
        {
            name: env.prepare_model(
                apply_performance(name, m.to(env.device), perf, lazy_r1=config.loss.r1_every > 1)
            )
            for name, m in built.items()
        }
    )
    optimizers = build_optimizers(nets, config.optim, fused=perf.fused_adam)
    # From here on each rank draws its own mapping noise. z comes from one stream shared by all ranks, of
    # which each rank takes its rows (TrainingData.next_batch), as the loaders shard the images: the union
    # of the ranks' batches is then the single-process batch, z included.
    seed_everything(rank_seed(config.train.seed, env.rank))
    z_generator = torch.Generator().manual_seed(config.train.seed)
    return TrainState(nets=nets.train(), nets_ema=nets_ema, optimizers=optimizers, z_generator=z_generator)
