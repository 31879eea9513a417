"""The procedural pretraining corpus of the offline feature network: many backgrounds x every defect shape, at
many strengths and scales, rendered by the embedded generator (never a user's images).

Backgrounds: the seven product textures of :mod:`dtgan.data.textures` and seven generic ones that resemble no
product (a dead-leaves model of overlapping discs; blurred noise of a random grain; random gratings; a collage of
textured discs; 1/f noise, the power spectrum of natural photographs; cluttered vegetation-like scenes of dark and
lit leaves and branches; Voronoi cells), each under random contrast, exposure, lighting and sensor noise, and a
share of them shot in the dark (a gamma that pushes most of the surface towards black, where a dark defect is
clipped, as on the shadows of a photograph).
Defects: every renderer of :mod:`dtgan.data.defects` (and none: normal) at a log-uniform boldness, so that the
network sees faint and bold defects alike; a defect's mask is where it changed the image after clipping (what is
left to see of it). Images are rendered at a random native side (``render_sides``) and
downsampled, with anti-aliasing, to ``side``, as a data set rendered at 128 px and read at 32 px is.

One class per background x defect: ``f"{background}/{defect}"``; every image also carries its defect's mask (where
the defect changed the image), so that a network can learn *where* a defect is, not only that there is one.
Everything is a function of the
:class:`CorpusSpec` (and the generator's code, :data:`CORPUS_VERSION`): the same spec gives the same images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dtgan.data.defects import DEFECTS, polyline_alpha, random_walk
from dtgan.data.textures import TEXTURES, blurred_noise, lighting, pixel_grid, smooth_noise
from dtgan.data.vocab import NORMAL

# Bump when the corpus' rendering changes: pretrained networks keyed by it are then trained again.
CORPUS_VERSION = 3
CHUNK = 64  # images per rendered chunk; each chunk has its own seeded RNG
# A pixel belongs to the defect where the defect changed the image by more than this (in [0, 1] units).
MASK_THRESHOLD = 0.02
# Share of the images shot in the dark: a gamma in DARK_GAMMA pushes most of the surface towards black, where a
# dark defect is clipped (as a dark crack drawn on the shadows of a photograph is).
DARK_SHARE = 0.4
DARK_GAMMA = (1.5, 3.0)


def dead_leaves(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Overlapping discs of random gray levels, radii power-law distributed (a dead-leaves model)."""
    y, x = pixel_grid(size)
    out = np.broadcast_to(rng.uniform(0.2, 0.8, (n, 1, 1)), (n, size, size)).astype(np.float32).copy()
    for _ in range(40):
        radius = (size * 0.03 * (1.0 - rng.uniform(0, 0.97, (n, 1, 1))) ** -0.7).astype(np.float32)
        radius = np.minimum(radius, 0.5 * size)
        cx, cy = (rng.uniform(-0.1, 1.1, (2, n, 1, 1)) * size).astype(np.float32)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < radius**2
        out = np.where(disc, rng.uniform(0.2, 0.8, (n, 1, 1)).astype(np.float32), out)
    return out + 0.03 * smooth_noise(rng, n, size, 4)


def noise_field(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Blurred noise of a random grain, over a slow drift."""
    sigma = float(rng.uniform(0.004, 0.05)) * size
    return 0.5 + 0.08 * blurred_noise(rng, n, size, sigma) + 0.05 * smooth_noise(rng, n, size, 3)


def gratings(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """One to three sinusoidal gratings of random period, direction and phase."""
    y, x = pixel_grid(size)
    out = np.full((n, size, size), 0.5, np.float32)
    for k in range(3):
        present = (rng.integers(0, 3, (n, 1, 1)) >= k).astype(np.float32)  # the first always
        theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        period = (size / rng.uniform(2.0, 16.0, (n, 1, 1))).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
        wave = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + phase)
        out += present * rng.uniform(0.03, 0.12, (n, 1, 1)).astype(np.float32) * wave
    return out + 0.02 * smooth_noise(rng, n, size, 3)


def collage(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Photograph-like scenes: overlapping discs (a dead-leaves layout, large to small) each filled with a textured
    surface (a product texture, blurred noise or gratings) at its own brightness, with sharp occlusion edges."""
    y, x = pixel_grid(size)
    fills = [*TEXTURES.values(), noise_field, gratings]
    first = fills[int(rng.integers(len(fills)))](rng, n, size)
    out = first - first.mean(axis=(1, 2), keepdims=True) + rng.uniform(0.2, 0.8, (n, 1, 1)).astype(np.float32)
    for _ in range(4):
        fill = fills[int(rng.integers(len(fills)))](rng, n, size)
        fill = fill - fill.mean(axis=(1, 2), keepdims=True)
        fill = fill * rng.uniform(0.5, 2.0, (n, 1, 1)).astype(np.float32) + rng.uniform(0.15, 0.85, (n, 1, 1))
        for _ in range(3):
            radius = (size * rng.uniform(0.1, 0.45, (n, 1, 1))).astype(np.float32)
            cx, cy = (rng.uniform(-0.1, 1.1, (2, n, 1, 1)) * size).astype(np.float32)
            out = np.where((x - cx) ** 2 + (y - cy) ** 2 < radius**2, fill, out)
    return out.astype(np.float32)


def pink_noise(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """1/f noise: white noise whose amplitude spectrum falls as f^(-beta/2), beta in 1.5-3 (rough to smooth), with a
    random anisotropy: the power spectrum of natural photographs, at a random strength."""
    freq_y = np.fft.fftfreq(size).astype(np.float32)[:, None]
    freq_x = np.fft.rfftfreq(size).astype(np.float32)[None, :]
    theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    stretch = np.exp(rng.uniform(np.log(0.5), np.log(2.0), (n, 1, 1))).astype(np.float32)
    along = freq_x * np.cos(theta) + freq_y * np.sin(theta)
    across = -freq_x * np.sin(theta) + freq_y * np.cos(theta)
    radius = np.sqrt((along * stretch) ** 2 + (across / stretch) ** 2) + 1.0 / size
    beta = rng.uniform(1.5, 3.0, (n, 1, 1)).astype(np.float32)
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * radius ** (-beta / 2), s=(size, size)).astype(np.float32)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-6
    return 0.5 + rng.uniform(0.08, 0.2, (n, 1, 1)).astype(np.float32) * field


def foliage(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Cluttered vegetation-like scenes: a dark 1/f ground, many small leaves (ellipses of bimodal gray: deep shadow
    or lit), and a few smooth branches crossing them, dark or bright; high contrast, much of it near black."""
    y, x = pixel_grid(size)
    out = 0.25 + 0.4 * (pink_noise(rng, n, size) - 0.5)
    for _ in range(int(rng.integers(20, 60))):
        radius = (size * rng.uniform(0.02, 0.09, (n, 1, 1))).astype(np.float32)
        aspect = rng.uniform(0.3, 1.0, (n, 1, 1)).astype(np.float32)
        tilt = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        cx, cy = (rng.uniform(-0.05, 1.05, (2, n, 1, 1)) * size).astype(np.float32)
        along = (x - cx) * np.cos(tilt) + (y - cy) * np.sin(tilt)
        across = (-(x - cx) * np.sin(tilt) + (y - cy) * np.cos(tilt)) / aspect
        lit = rng.random((n, 1, 1)) < 0.45
        gray = np.where(lit, rng.uniform(0.35, 0.8, (n, 1, 1)), rng.uniform(0.0, 0.2, (n, 1, 1))).astype(
            np.float32
        )
        out = np.where(along**2 + across**2 < radius**2, gray, out)
    for _ in range(int(rng.integers(1, 5))):
        start = (rng.uniform(0.0, 1.0, (n, 2, 1, 1)) * size).astype(np.float32)
        heading = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
        step = (rng.uniform(0.06, 0.12, (n, 1, 1)) * size).astype(np.float32)
        points = random_walk(
            rng, start, heading, 12, step, rng.uniform(0.05, 0.2, (n, 1, 1)).astype(np.float32)
        )
        width = np.broadcast_to(
            (rng.uniform(0.008, 0.03, (n, 1, 1, 1)) * size).astype(np.float32), (n, 12, 1, 1)
        )
        alpha = polyline_alpha(x, y, points, width, 1.0)
        gray = np.where(
            rng.random((n, 1, 1)) < 0.7, rng.uniform(0.0, 0.15, (n, 1, 1)), rng.uniform(0.5, 0.8, (n, 1, 1))
        )
        out = out * (1.0 - alpha) + gray.astype(np.float32) * alpha
    return (out + 0.03 * smooth_noise(rng, n, size, 5)).astype(np.float32)


def cells(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Voronoi cells of random gray (pebbles, tiles, scales), each shaded by its own small gradient, with dark gaps
    of random width between them."""
    y, x = pixel_grid(size)
    count = int(rng.integers(6, 40))
    px, py = (rng.uniform(0, 1, (2, n, count, 1, 1)) * size).astype(np.float32)
    distance = np.sqrt((x[None, None] - px) ** 2 + (y[None, None] - py) ** 2)  # (n, count, H, W)
    order = np.sort(distance, axis=1)[:, :2]
    nearest = np.argmin(distance, axis=1)
    gray = rng.uniform(0.1, 0.85, (n, count)).astype(np.float32)
    out = np.take_along_axis(gray, nearest.reshape(n, -1), axis=1).reshape(n, size, size)
    gap = (rng.uniform(0.0, 0.03, (n, 1, 1)) * size + 0.3).astype(np.float32)
    edge = np.clip((order[:, 1] - order[:, 0]) / (2 * gap), 0.0, 1.0)
    depth = rng.uniform(0.0, 1.0, (n, 1, 1)).astype(np.float32)
    out = out * (1.0 - depth * (1.0 - edge))
    return (out + 0.04 * smooth_noise(rng, n, size, 6)).astype(np.float32)


GENERIC_BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "dead_leaves": dead_leaves,
    "noise_field": noise_field,
    "gratings": gratings,
    "collage": collage,
    "pink_noise": pink_noise,
    "foliage": foliage,
    "cells": cells,
}


def backgrounds() -> dict[str, Callable[[np.random.Generator, int, int], np.ndarray]]:
    """Every background of the corpus, in a fixed order: the product textures, then the generic ones."""
    return {**TEXTURES, **GENERIC_BACKGROUNDS}


@dataclass(frozen=True)
class CorpusSpec:
    """What the corpus is: images per background x defect class, side, native sides, boldness range, seed."""

    images_per_class: int = 360
    side: int = 32
    render_sides: tuple[int, ...] = (32, 64, 128)
    min_boldness: float = 0.5
    max_boldness: float = 3.0
    seed: int = 0

    def as_dict(self) -> dict:
        return {**asdict(self), "render_sides": list(self.render_sides), "version": CORPUS_VERSION}

    def key(self) -> str:
        """Short sha256 of the spec and the corpus version: the corpus' identity before it is rendered."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


def class_names() -> list[str]:
    """``background/defect`` of every class, background-major (normal first within a background)."""
    return [f"{b}/{d}" for b in backgrounds() for d in (NORMAL, *DEFECTS)]


def _render_chunk(spec: CorpusSpec, b: int, d: int, chunk: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, side, side) images of background ``b`` with defect ``d`` (0 = normal), and float32 (n, side,
    side) masks: the share of each output pixel where the defect changed the surface by more than
    :data:`MASK_THRESHOLD` (all zero for normals)."""
    rng = np.random.default_rng([spec.seed, b, d, chunk])
    size = int(rng.choice(spec.render_sides))
    background = list(backgrounds().values())[b](rng, n, size).astype(np.float32)
    mean = background.mean(axis=(1, 2), keepdims=True)
    contrast = np.exp(rng.uniform(np.log(0.5), np.log(2.0), (n, 1, 1))).astype(np.float32)
    background = mean + contrast * (background - mean)
    gain, field = lighting(rng, n, size)
    background = np.clip(background * gain + field, 0.08, 0.92)
    gamma = np.exp(rng.uniform(np.log(DARK_GAMMA[0]), np.log(DARK_GAMMA[1]), (n, 1, 1))).astype(np.float32)
    background = np.where(rng.random((n, 1, 1)) < DARK_SHARE, background**gamma, background)
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    noise *= rng.uniform(0.0, 0.03, (n, 1, 1)).astype(np.float32)
    clean = np.clip(background + noise, 0.0, 1.0)
    image, mask = clean, np.zeros((n, size, size), np.float32)
    if d > 0:
        boldness = float(np.exp(rng.uniform(np.log(spec.min_boldness), np.log(spec.max_boldness))))
        defect = list(DEFECTS.values())[d - 1](rng, n, size, boldness)
        image = np.clip(clean + defect, 0.0, 1.0)
        mask = (np.abs(image - clean) > MASK_THRESHOLD).astype(
            np.float32
        )  # what is left of it after clipping
    x = torch.from_numpy(image * 255.0)[:, None]
    m = torch.from_numpy(mask)[:, None]
    if size != spec.side:
        x = F.interpolate(
            x, size=(spec.side, spec.side), mode="bilinear", antialias=True, align_corners=False
        )
        m = F.adaptive_avg_pool2d(m, spec.side)
    return x.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy(), m[:, 0].numpy()


@dataclass(frozen=True)
class Corpus:
    """The rendered corpus: uint8 (N, 1, side, side) images, (N,) long labels (background-major class index),
    float32 (N, side, side) defect masks (share of each pixel the defect covers) and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    names: list[str]


def render_corpus(spec: CorpusSpec) -> Corpus:
    """The whole corpus of ``spec``: every background x defect class, ``images_per_class`` each."""
    names = class_names()
    per_class = len(DEFECTS) + 1
    images, masks, labels = [], [], []
    for b in range(len(backgrounds())):
        for d in range(per_class):
            for chunk, start in enumerate(range(0, spec.images_per_class, CHUNK)):
                n = min(CHUNK, spec.images_per_class - start)
                x, m = _render_chunk(spec, b, d, chunk, n)
                images.append(x)
                masks.append(m)
                labels.append(np.full(n, b * per_class + d, np.int64))
    return Corpus(
        images=torch.from_numpy(np.concatenate(images))[:, None],
        labels=torch.from_numpy(np.concatenate(labels)),
        masks=torch.from_numpy(np.concatenate(masks)),
        names=names,
    )
