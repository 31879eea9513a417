"""Synthesis in inference mode with the EMA networks: latent-guided (z ~ N(0, I)) and reference-guided
translations of source images into target defect domains, seeded and independent of the batch size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from dtgan.data.transforms import from_uint8, to_uint8
from dtgan.errors import DataError

SynthesisGuidance = Literal["latent", "reference"]


def nets_device(nets) -> torch.device:
    """The device the (inference) networks live on."""
    return next(nets.generator.parameters()).device


def latent_codes(num: int, latent_dim: int, seed: int) -> torch.Tensor:
    """z ~ N(0, I) (num, latent_dim) on the CPU, the same for every batch size and device."""
    return torch.randn(num, latent_dim, generator=torch.Generator().manual_seed(seed))


def pick_references(
    y_trg: torch.Tensor, y_ref: torch.Tensor | None, num_references: int, seed: int
) -> torch.Tensor:
    """For each target i a seeded random reference index among those of domain ``y_trg[i]`` (among all
    references when ``y_ref`` is None, i.e. all references are of the target domain). (N,) long."""
    g = torch.Generator().manual_seed(seed)
    if y_ref is None:
        if num_references == 0:
            raise DataError("reference-guided synthesis needs at least one reference image")
        return torch.randint(0, num_references, (len(y_trg),), generator=g)
    index = torch.empty(len(y_trg), dtype=torch.long)
    for domain in torch.unique(y_trg).tolist():
        targets = torch.nonzero(y_trg == domain).flatten()
        candidates = torch.nonzero(y_ref == domain).flatten()
        if len(candidates) == 0:
            raise DataError(f"no reference images of defect index {domain}; reference guidance needs some")
        index[targets] = candidates[torch.randint(0, len(candidates), (len(targets),), generator=g)]
    return index


@torch.inference_mode()
def synthesize(
    nets,
    sources: torch.Tensor,
    y_trg: torch.Tensor,
    guidance: SynthesisGuidance,
    references: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 64,
    y_ref: torch.Tensor | None = None,
) -> torch.Tensor:
    """Translate each source (uint8 (N, 3, H, W)) to its target domain ``y_trg`` (N,) long.

    Latent guidance draws z ~ N(0, I) per image; reference guidance encodes a seeded random reference of
    domain ``y_trg[i]`` (``references`` uint8 (M, 3, H, W), labelled by ``y_ref`` (M,) or all of the target
    domain when ``y_ref`` is None). Returns uint8 (N, 3, H, W) on the CPU, the same for any batch size
    (up to one grey level of float rounding) except with the mapping network's per-pixel noise (step g): it
    is drawn per batch from the global RNG, which is forked and seeded here.
    """
    if guidance not in ("latent", "reference"):
        raise ValueError(f"guidance must be 'latent' or 'reference', got {guidance!r}")
    if len(sources) != len(y_trg):
        raise ValueError(f"{len(sources)} sources but {len(y_trg)} targets")
    device = nets_device(nets)
    if guidance == "latent":
        z_all = latent_codes(len(sources), nets.config.model.latent_dim, seed)
    else:
        if references is None:
            raise ValueError("reference guidance needs references")
        ref_index = pick_references(y_trg, y_ref, len(references), seed)
    outputs = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(sources), batch_size):
            batch = slice(start, start + batch_size)
            x_real = from_uint8(sources[batch]).to(device)  # (B, 3, H, W) in [-1, 1]
            y = y_trg[batch].to(device)
            if guidance == "latent":
                s_trg, c_trg = nets.mapping_network(z_all[batch].to(device), y)
            else:
                x_ref = from_uint8(references[ref_index[batch]]).to(device)
                s_trg, c_trg = nets.style_encoder(x_ref, y)
            x_fake = nets.generator(x_real, s_trg, c_trg)  # no tanh: clamp before quantising
            outputs.append(to_uint8(x_fake.clamp(-1.0, 1.0)).cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, *sources.shape[1:], dtype=torch.uint8)


def latent_translator(
    nets, seed: int, batch_size: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``translate(sources, y_trg)`` with latent guidance, for the disentanglement metrics."""

    def translate(sources: torch.Tensor, y_trg: torch.Tensor) -> torch.Tensor:
        return synthesize(nets, sources, y_trg, "latent", seed=seed, batch_size=batch_size)

    return translate


@torch.inference_mode()
def _translate_with_codes(
    nets, sources: torch.Tensor, s: torch.Tensor, c: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    """G(x_i, s, c) for every source with one code (s (1, S), c (1, C, B, B) or None) -> uint8 (N, 3, H, W)."""
    device = nets_device(nets)
    outputs = []
    for start in range(0, len(sources), batch_size):
        x_real = from_uint8(sources[start : start + batch_size]).to(device)
        n = len(x_real)
        x_fake = nets.generator(x_real, s.expand(n, -1), None if c is None else c.expand(n, -1, -1, -1))
        outputs.append(to_uint8(x_fake.clamp(-1.0, 1.0)).cpu())
    return torch.cat(outputs)


def shared_code_translator(
    nets, seed: int, batch_size: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``translate(sources, y_trg)`` giving every source of one call the same latent code: one z, one pass of M
    (so the same per-pixel noise in step g) per target domain; for the input-dependence metric."""

    @torch.inference_mode()
    def translate(sources: torch.Tensor, y_trg: torch.Tensor) -> torch.Tensor:
        domains = torch.unique(y_trg).tolist()
        if len(domains) != 1:
            raise ValueError(f"a shared code needs one target domain per call, got {domains}")
        device = nets_device(nets)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            z = latent_codes(1, nets.config.model.latent_dim, seed + domains[0]).to(device)
            s, c = nets.mapping_network(z, torch.tensor(domains, device=device))
        return _translate_with_codes(nets, sources, s, c, batch_size)

    return translate


def self_reconstructor(nets, domain: int, batch_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reconstruct(x)`` = G(x, E(x, domain)): each source translated with its own style (and content)."""

    @torch.inference_mode()
    def reconstruct(sources: torch.Tensor) -> torch.Tensor:
        device = nets_device(nets)
        outputs = []
        for start in range(0, len(sources), batch_size):
            x_real = from_uint8(sources[start : start + batch_size]).to(device)
            y = torch.full((len(x_real),), domain, dtype=torch.long, device=device)
            s, c = nets.style_encoder(x_real, y)
            outputs.append(to_uint8(nets.generator(x_real, s, c).clamp(-1.0, 1.0)).cpu())
        return torch.cat(outputs)

    return reconstruct
