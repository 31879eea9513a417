"""A fixed random training batch (tiny, 32 px, K=3 defects, P=2 products) shared by the loss tests."""

import torch

from dtgan.losses import Batch

N = 4


def make_batch(latent_dim: int = 16, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(N, 3, 32, 32, generator=g) * 2 - 1  # noqa: E731
    return Batch(
        x_real=img(),
        y_org=torch.tensor([0, 1, 2, 0]),
        p_org=torch.tensor([0, 1, 0, 1]),
        x_ref=img(),
        x_ref2=img(),
        y_trg=torch.tensor([1, 2, 0, 1]),
        z_trg=torch.randn(N, latent_dim, generator=g),
        z_trg2=torch.randn(N, latent_dim, generator=g),
    )
