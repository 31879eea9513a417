"""Sample grids as PNG: sources x latent samples per defect, sources x references, and random styles on fixed
(source, content) pairs like the paper's Fig. 6."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from dtgan.data.transforms import from_uint8, to_uint8
from dtgan.evaluation.synthesis import latent_codes, nets_device, synthesize
from dtgan.utils.atomic import atomic_path

GRID_PADDING_PX = 1


@torch.inference_mode()
def latent_grid(
    nets, sources: torch.Tensor, defects: list[int], num_styles: int, seed: int
) -> tuple[torch.Tensor, int]:
    """Rows: sources; columns: [source | num_styles latent samples for each defect], one z per column shared
    by every row, so a column shows one style on every source. Returns uint8 tiles (rows * cols, 3, H, W) in
    row-major order and the column count."""
    device = nets_device(nets)
    n = len(sources)
    x_src = from_uint8(sources).to(device)
    z = latent_codes(len(defects) * num_styles, nets.config.model.latent_dim, seed).to(device)
    columns = [sources]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i, d in enumerate(defects):
            y = torch.full((n,), d, dtype=torch.long, device=device)
            for k in range(num_styles):
                s_trg, c_trg = nets.mapping_network(
                    z[i * num_styles + k : i * num_styles + k + 1].expand(n, -1), y
                )
                columns.append(to_uint8(nets.generator(x_src, s_trg, c_trg).clamp(-1.0, 1.0)).cpu())
    return torch.stack(columns, dim=1).flatten(0, 1), len(columns)


def reference_grid(
    nets, sources: torch.Tensor, references: torch.Tensor, y_ref: torch.Tensor, batch_size: int = 64
) -> tuple[torch.Tensor, int]:
    """A header row [blank | references], then [source | source in the style of each reference]."""
    n = len(sources)
    columns = [sources]
    for j in range(len(references)):
        columns.append(
            synthesize(
                nets,
                sources,
                y_ref[j].repeat(n),
                "reference",
                references=references[j : j + 1],
                batch_size=batch_size,
            )
        )
    header = torch.cat([torch.zeros_like(sources[:1]), references])  # (1 + M, 3, H, W)
    body = torch.stack(columns, dim=1).flatten(0, 1)
    return torch.cat([header, body]), len(columns)


@torch.inference_mode()
def style_grid(
    nets, sources: torch.Tensor, contents: torch.Tensor, y_trg: torch.Tensor, num_styles: int, seed: int
) -> tuple[torch.Tensor, int]:
    """Fig. 6: rows [source | content reference | G(source, s_k, c(content)) for num_styles random s_k].

    The content code c comes from the style encoder on the content reference (domain ``y_trg``); the style
    codes s_k from the mapping network on random z (the same z_k in every row). Without content branches
    (ladder step a) c is None and only the styles vary.
    """
    device = nets_device(nets)
    n = len(sources)
    x_src = from_uint8(sources).to(device)
    y = y_trg.to(device)
    _, c_content = nets.style_encoder(from_uint8(contents).to(device), y)
    z = latent_codes(num_styles, nets.config.model.latent_dim, seed).to(device)
    columns = [sources, contents]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for k in range(num_styles):
            s_k, _ = nets.mapping_network(z[k : k + 1].expand(n, -1), y)
            x_fake = nets.generator(x_src, s_k, c_content)
            columns.append(to_uint8(x_fake.clamp(-1.0, 1.0)).cpu())
    return torch.stack(columns, dim=1).flatten(0, 1), len(columns)


def save_grid_png(tiles_uint8: torch.Tensor, num_columns: int, path: str | Path) -> Path:
    """Write the tiles as one PNG (atomically)."""
    grid = make_grid(tiles_uint8.float() / 255.0, nrow=num_columns, padding=GRID_PADDING_PX)
    with atomic_path(path) as tmp:
        save_image(grid, tmp, format="png")
    return Path(path)
