"""Sample grids during training (like the paper's Figs. 5 and 10): sources x target domains, latent and reference.

Latent grid: one row per source, [source | G(x, M(z_k, k)) for each domain k] with one fixed z per domain.
Reference grid: a first row [blank | reference of each domain k], then [source | G(x, E(ref_k, k)) ...].
Sampling runs in a forked RNG so that it never changes the training's random streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import make_grid, save_image

from dtgan.data.dataset import DefectImageDataset
from dtgan.data.selection import round_robin
from dtgan.data.transforms import from_uint8
from dtgan.data.vocab import NORMAL, NORMAL_INDEX
from dtgan.errors import DataError
from dtgan.utils.atomic import atomic_path

SAMPLE_SOURCES = 8  # rows of a grid (fewer when the data has fewer normal sources)
SAMPLE_DIR = "samples"


@dataclass(frozen=True)
class SampleInputs:
    """The fixed inputs of every grid of a run (CPU tensors; images in [-1, 1])."""

    sources: torch.Tensor  # (N, 3, H, W) normal sources, round-robin over products
    references: torch.Tensor  # (K, 3, H, W) one reference per target domain
    z_per_domain: torch.Tensor  # (K, latent_dim)


def sample_inputs_from_data(
    train_set, data_path: str, img_size: int, latent_dim: int, seed: int
) -> SampleInputs:
    """Sources from gan_holdout normal of ``data_path`` (gan_train normal when there is none), references
    from ``train_set`` (the decoded gan_train DefectImageDataset)."""

    num_domains = len(train_set.vocab.defects)
    try:
        pool = DefectImageDataset(data_path, splits=("gan_holdout",), img_size=img_size, defects=(NORMAL,))
    except DataError:  # no held-out normal images: take the sources from gan_train
        pool = train_set
    normal = torch.nonzero(pool.y == NORMAL_INDEX).flatten()
    picked = normal[round_robin(pool.p[normal], SAMPLE_SOURCES)]
    sources = from_uint8(pool.images_uint8[picked])
    refs = torch.zeros((num_domains, *sources.shape[1:]))
    for k in range(num_domains):
        rows = torch.nonzero(train_set.y == k).flatten()
        if len(rows):  # a domain without training images keeps a black reference
            refs[k] = from_uint8(train_set.images_uint8[rows[:1]])[0]
    z = torch.randn(num_domains, latent_dim, generator=torch.Generator().manual_seed(seed))
    return SampleInputs(sources=sources, references=refs, z_per_domain=z)


@torch.no_grad()
def translate_grids(
    nets_ema: nn.ModuleDict, inputs: SampleInputs, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent grid, reference grid) images in [-1, 1], each (rows * cols, 3, H, W) in row-major order."""
    generator, mapping, encoder = (
        nets_ema["generator"],
        nets_ema["mapping_network"],
        nets_ema["style_encoder"],
    )
    x = inputs.sources.to(device)  # (N, 3, H, W)
    n, k = len(x), len(inputs.references)
    latent_cols, ref_cols = [x], [x]
    for d in range(k):
        y = torch.full((n,), d, dtype=torch.long, device=device)
        s, c = mapping(inputs.z_per_domain[d : d + 1].to(device).expand(n, -1), y)
        latent_cols.append(generator(x, s, c))
        s, c = encoder(inputs.references[d : d + 1].to(device).expand(n, -1, -1, -1), y)
        ref_cols.append(generator(x, s, c))
    latent = torch.stack(latent_cols, dim=1).flatten(0, 1)  # (N * (1 + K), 3, H, W)
    header = torch.cat([torch.full_like(x[:1], -1.0), inputs.references.to(device)])  # (1 + K, 3, H, W)
    reference = torch.cat([header, torch.stack(ref_cols, dim=1).flatten(0, 1)])
    return latent.cpu(), reference.cpu()


def write_sample_grids(
    run_dir: str | Path,
    step: int,
    nets_ema: nn.ModuleDict,
    inputs: SampleInputs,
    device: torch.device,
    seed: int,
) -> list[Path]:
    """samples/step_XXXXXXXX_{latent,reference}.png, written atomically; mapping noise is seeded by ``seed``."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        grids = translate_grids(nets_ema, inputs, device)
    cols = 1 + len(inputs.references)
    written = []
    for kind, images in zip(("latent", "reference"), grids):
        path = Path(run_dir) / SAMPLE_DIR / f"step_{step:08d}_{kind}.png"
        grid = make_grid(((images + 1) / 2).clamp(0, 1), nrow=cols, padding=1)
        with atomic_path(path) as tmp:
            save_image(grid, tmp, format="png")
        written.append(path)
    return written
