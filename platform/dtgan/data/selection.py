"""Row selections that keep every product represented (grids, evaluation subsets)."""

from __future__ import annotations

import torch


def round_robin(products: torch.Tensor, count: int) -> torch.Tensor:
    """Up to ``count`` row indices taking one row of each product in turn, in row order within a product."""
    queues = [torch.nonzero(products == p).flatten().tolist() for p in torch.unique(products).tolist()]
    picked: list[int] = []
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return torch.tensor(picked, dtype=torch.long)
