"""Class-balanced, seeded, rank-sharded source and reference loaders, and endless resumable iteration.

Each epoch, every rank computes the same seeded global draw of ``len(dataset)`` indices with replacement
and weights 1/class-count (StarGAN v2's WeightedRandomSampler), and takes its part ``rank::world_size``.
Every draw also carries a seed for its augmentation, so batches do not depend on worker processes and a
run resumed at (epoch, batch) sees exactly the batches it would have seen. Under Ray Train pass
``add_dist_sampler=False`` to ``prepare_data_loader``: the sharding is done here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dtgan.config.data import DataConfig
from dtgan.data.dataset import DefectImageDataset, _index_and_generator
from dtgan.errors import DataError

SOURCE_STREAM, REFERENCE_STREAM, PAIRING_STREAM = 0, 1, 2  # independent random streams of one seed
_SEED_LIMIT = 2**62


def derive_seed(seed: int, stream: int, epoch: int) -> int:
    """A 64-bit seed for (seed, stream, epoch), well mixed (NumPy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, stream, epoch]).generate_state(1, np.uint64)[0])


def class_weights(dataset: DefectImageDataset, balance: str) -> torch.Tensor:
    """Per-sample weights 1 / (size of its class): class = defect, or product x defect (docs/model.md#a13)."""
    labels = dataset.y if balance == "defect" else dataset.p * dataset.vocab.num_domains + dataset.y
    counts = torch.bincount(labels)
    return 1.0 / counts[labels].double()


class BalancedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, augmentation seed) of this rank's share of a seeded weighted draw; drop_last."""

    def __init__(
        self,
        weights: torch.Tensor,
        batch_size: int,
        seed: int,
        stream: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.weights, self.batch_size, self.seed, self.stream = weights, batch_size, seed, stream
        self.rank, self.world_size = rank, world_size
        self.per_rank = len(weights) // world_size  # equal on every rank, so DDP ranks stay in step
        self.batches_per_epoch = self.per_rank // batch_size
        if self.batches_per_epoch == 0:
            raise DataError(
                f"{len(weights)} images are too few for batch size {batch_size} on {world_size} "
                f"rank(s); lower train.batch_size or add data"
            )
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, batch: int = 0) -> None:
        """Start the next iteration at ``batch`` of ``epoch`` (used by InfiniteBatches)."""
        self.epoch, self.start_batch = epoch, batch

    def draw(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's (indices, seeds) of ``epoch``, each (per_rank,)."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, self.stream, epoch))
        indices = torch.multinomial(self.weights, len(self.weights), replacement=True, generator=generator)
        seeds = torch.randint(0, _SEED_LIMIT, (len(self.weights),), generator=generator)
        share = slice(self.rank, None, self.world_size)
        return indices[share][: self.per_rank], seeds[share][: self.per_rank]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        indices, seeds = self.draw(self.epoch)
        for batch in range(self.start_batch, self.batches_per_epoch):
            part = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
            yield list(zip(indices[part].tolist(), seeds[part].tolist()))

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch


class ReferencePairs(Dataset):
    """Items ``(x_ref, x_ref2, y_trg)``: each image with a fixed partner of the same defect domain.

    The partners are a seeded permutation within each domain, drawn once at construction (an image can be
    its own partner), as StarGAN v2's reference data set does.
    """

    def __init__(self, dataset: DefectImageDataset, seed: int) -> None:
        self.dataset = dataset
        generator = torch.Generator().manual_seed(derive_seed(seed, PAIRING_STREAM, 0))
        self.partner = torch.empty(len(dataset), dtype=torch.long)
        for domain in torch.unique(dataset.y).tolist():
            members = (dataset.y == domain).nonzero().flatten()
            self.partner[members] = members[torch.randperm(len(members), generator=generator)]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        index, generator = _index_and_generator(item)
        images, transform = self.dataset.images_uint8, self.dataset.transform
        x_ref = transform(images[index], generator)
        x_ref2 = transform(images[int(self.partner[index])], generator)
        return x_ref, x_ref2, int(self.dataset.y[index])


def _loader(dataset: Dataset, sampler: BalancedBatchSampler, data_cfg: DataConfig) -> DataLoader:
    workers = data_cfg.loader_workers
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0)


def make_source_loader(
    dataset: DefectImageDataset,
    data_cfg: DataConfig,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Batches ``(x, y, p)``: x float32 (B, 3, H, W) in [-1, 1], y and p LongTensor (B,)."""
    weights = class_weights(dataset, data_cfg.balance)
    return _loader(
        dataset, BalancedBatchSampler(weights, batch_size, seed, SOURCE_STREAM, rank, world_size), data_cfg
    )


def make_reference_loader(
    dataset: DefectImageDataset,
    data_cfg: DataConfig,
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Batches ``(x_ref, x_ref2, y_trg)``: two images of domain y_trg each (B, 3, H, W), y_trg (B,)."""
    weights = class_weights(dataset, data_cfg.balance)
    sampler = BalancedBatchSampler(weights, batch_size, seed, REFERENCE_STREAM, rank, world_size)
    return _loader(ReferencePairs(dataset, seed), sampler, data_cfg)


class InfiniteBatches:
    """Endless batches of a loader from this module: an exhausted epoch restarts with epoch + 1.

    ``state_dict()`` is the position (epoch, batches consumed in it); after ``load_state_dict`` the next
    batch is exactly the one that followed that position, without decoding the skipped batches.
    """

    def __init__(self, loader: DataLoader) -> None:
        if not isinstance(loader.batch_sampler, BalancedBatchSampler):
            raise TypeError("InfiniteBatches needs a loader from make_source_loader or make_reference_loader")
        self.loader, self.sampler = loader, loader.batch_sampler
        self.epoch, self.batch = 0, 0
        self._iterator: Iterator | None = None

    def __iter__(self) -> InfiniteBatches:
        return self

    def __next__(self):
        if self._iterator is None:
            self._start()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.batch = self.epoch + 1, 0
            self._start()
            batch = next(self._iterator)
        self.batch += 1
        return batch

    def _start(self) -> None:
        self.sampler.set_position(self.epoch, self.batch)
        self._iterator = iter(self.loader)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._iterator = None
