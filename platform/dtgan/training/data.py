"""The training inputs of the loop: seeded, rank-sharded source and reference batches plus z draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dtgan.config.root import DTGANConfig
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.importers import warn_normal_only_products
from dtgan.data.loaders import InfiniteBatches, make_reference_loader, make_source_loader
from dtgan.data.transforms import stargan_transform
from dtgan.errors import ConfigError
from dtgan.losses.objectives import Batch
from dtgan.training.environment import Environment


@dataclass
class TrainingData:
    """Endless source batches (x, y, p) and reference batches (x_ref, x_ref2, y_trg) of one rank."""

    dataset: Any  # dtgan.data.dataset.DefectImageDataset of gan_train (decoded once)
    vocab: Any  # dtgan.data.vocab.Vocab
    sources: Any  # dtgan.data.loaders.InfiniteBatches
    references: Any  # dtgan.data.loaders.InfiniteBatches
    rank: int = 0
    world_size: int = 1

    def state_dict(self) -> dict[str, dict]:
        return {"sources": self.sources.state_dict(), "references": self.references.state_dict()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        self.sources.load_state_dict(state["sources"])
        self.references.load_state_dict(state["references"])

    def next_batch(self, z_generator: torch.Generator, latent_dim: int, device: torch.device) -> Batch:
        """The next iteration's inputs on ``device``; z_trg, z_trg2 ~ N(0, I) from ``z_generator`` (CPU).

        z is drawn for the global batch (N * world_size rows, the same on every rank) and this rank takes rows
        ``rank::world_size``, the positions its images hold in the global batch (``data.loaders`` shards the
        same way); with one process this is the plain draw.
        """
        # The loaders are seeded by themselves, but each new DataLoader iterator (every epoch and after a
        # resume) draws a base seed from torch's global RNG, which mapping noise also uses: keep them apart.
        with torch.random.fork_rng(devices=[]):
            x_real, y_org, p_org = next(self.sources)
            x_ref, x_ref2, y_trg = next(self.references)
        n, share = x_real.shape[0] * self.world_size, slice(self.rank, None, self.world_size)
        z_trg = torch.randn(n, latent_dim, generator=z_generator)[share]
        z_trg2 = torch.randn(n, latent_dim, generator=z_generator)[share]
        move = {"device": device, "non_blocking": True}
        return Batch(
            x_real=x_real.to(**move),
            y_org=y_org.to(**move),
            p_org=p_org.to(**move),
            x_ref=x_ref.to(**move),
            x_ref2=x_ref2.to(**move),
            y_trg=y_trg.to(**move),
            z_trg=z_trg.to(**move),
            z_trg2=z_trg2.to(**move),
        )


def per_rank_batch_size(config: DTGANConfig, env: Environment) -> int:
    """train.batch_size is global; every rank gets an equal share."""
    if config.train.batch_size % env.world_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} is not divisible by the {env.world_size} workers; "
            "choose a multiple of the worker count"
        )
    return config.train.batch_size // env.world_size


def build_training_data(config: DTGANConfig, env: Environment) -> TrainingData:
    """Decode gan_train once and build the class-balanced source and reference loaders of this rank."""

    batch_size = per_rank_batch_size(config, env)
    dataset = DefectImageDataset(
        config.data.path,
        splits=("gan_train",),
        img_size=config.model.img_size,
        transform=stargan_transform(config.data, config.model.img_size),
    )
    if env.is_main:
        vocab = dataset.vocab
        warn_normal_only_products(
            [vocab.products[i] for i in dataset.p.tolist()],
            [vocab.defects[i] for i in dataset.y.tolist()],
            f"{config.data.path} (gan_train)",
        )
    common = {"rank": env.rank, "world_size": env.world_size}
    seed = config.train.seed  # the loaders derive independent source/reference streams from it
    sources = make_source_loader(dataset, config.data, batch_size, seed, **common)
    references = make_reference_loader(dataset, config.data, batch_size, seed, **common)
    return TrainingData(
        dataset=dataset,
        vocab=dataset.vocab,
        sources=InfiniteBatches(sources),
        references=InfiniteBatches(references),
        rank=env.rank,
        world_size=env.world_size,
    )
