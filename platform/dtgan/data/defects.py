"""Procedural foreground defects, rendered a batch at a time as signed intensity changes with exact masks.

A renderer maps (rng, n, size, boldness) to ``delta`` float32 (n, size, size): the change added to a clean
background, exactly zero outside the defect mask ``delta != 0``. Lengths are fractions of ``size``.
``boldness`` b (1 = the SDI-like default) widens scratches and enlarges spots b times and raises their
contrast b times (capped at MAX_CONTRAST), drawing the same random numbers: a data set meant for small
images (32 px on a CPU) keeps defects that a downsampling would otherwise blur into the texture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dtgan.data.textures import pixel_grid

Defect = Callable[[np.random.Generator, int, int, float], np.ndarray]
MASK_THRESHOLD = 0.05  # alpha below this is cut to exactly 0, so the mask is where the image changed
DARK_PROBABILITY = 0.65  # most scratches and spots are darker than the surface
MAX_STROKES = 3
MAX_SPOTS = 6
MAX_CONTRAST = 0.6  # of the intensity range, after boldness


def _polarity(rng: np.random.Generator, n: int) -> np.ndarray:
    """-1 (dark) or +1 (bright) per image, (n, 1, 1)."""
    return np.where(rng.random((n, 1, 1)) < DARK_PROBABILITY, -1.0, 1.0).astype(np.float32)


def _cut(alpha: np.ndarray) -> np.ndarray:
    return np.where(alpha >= MASK_THRESHOLD, alpha, 0.0).astype(np.float32)


def _bolder_contrast(contrast: np.ndarray, boldness: float) -> np.ndarray:
    return np.minimum(contrast * boldness, MAX_CONTRAST) if boldness != 1.0 else contrast


def scratch(rng: np.random.Generator, n: int, size: int, boldness: float = 1.0) -> np.ndarray:
    """Scratches: 1-3 parallel strokes along a bent curve; light (thin, faint) or heavy (wide, strong).

    Each stroke is the curve v = f(u) in a frame rotated to the scratch direction, with
    f(u) = 4 h s(1 - s) + w s(1 - s)(2s - 1), s = u / L (bow h and S-wiggle w); the distance to it is
    approximated by |v - f(u)| / sqrt(1 + f'(u)^2), and by the distance to the end points beyond them.
    """
    y, x = pixel_grid(size)
    heavy = rng.random((n, 1, 1)) < 0.45
    length = (rng.uniform(0.2, 0.85, (n, 1, 1)) * size).astype(np.float32)
    angle = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    start_x = (rng.uniform(0.15, 0.85, (n, 1, 1)) * size).astype(np.float32)
    start_y = (rng.uniform(0.15, 0.85, (n, 1, 1)) * size).astype(np.float32)
    bow = (rng.normal(0, 0.12, (n, 1, 1)) * length).astype(np.float32)
    wiggle = (rng.normal(0, 0.15, (n, 1, 1)) * length).astype(np.float32)
    half_width = np.where(heavy, rng.uniform(0.008, 0.022, (n, 1, 1)), rng.uniform(0.003, 0.008, (n, 1, 1)))
    half_width = np.maximum(half_width * size * boldness, 0.45).astype(np.float32)  # pixels, at least ~1 px wide
    contrast = np.where(heavy, rng.uniform(0.2, 0.45, (n, 1, 1)), rng.uniform(0.08, 0.18, (n, 1, 1)))
    contrast = _bolder_contrast(contrast, boldness)
    strokes = rng.integers(1, MAX_STROKES + 1, (n, 1, 1))
    u0 = (x - start_x) * np.cos(angle) + (y - start_y) * np.sin(angle)  # (n, H, W) along the scratch
    v0 = -(x - start_x) * np.sin(angle) + (y - start_y) * np.cos(angle)  # across it
    alpha = np.zeros((n, size, size), dtype=np.float32)
    for stroke in range(MAX_STROKES):
        offset = (stroke * 2.6 * half_width * rng.choice([-1.0, 1.0], (n, 1, 1))).astype(np.float32)
        weight = np.where(stroke < strokes, rng.uniform(0.5, 1.0, (n, 1, 1)) if stroke else 1.0, 0.0)
        stretch = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32) if stroke else 1.0
        stroke_length = length * stretch
        s = np.clip(u0 / stroke_length, 0.0, 1.0)
        curve = 4 * bow * s * (1 - s) + wiggle * s * (1 - s) * (2 * s - 1) + offset
        slope = (4 * bow * (1 - 2 * s) + wiggle * (-6 * s * s + 6 * s - 1)) / stroke_length
        inside = np.abs(v0 - curve) / np.sqrt(1 + slope * slope)
        beyond = np.sqrt((u0 - s * stroke_length) ** 2 + (v0 - curve) ** 2)
        distance = np.where((u0 >= 0) & (u0 <= stroke_length), inside, beyond)
        taper = np.clip(np.sin(np.pi * s) * 4.0, 0.0, 1.0)  # strokes fade in and out at their ends
        profile = np.where(heavy, 1.0 / (1.0 + (distance / half_width) ** 4),
                           np.exp(-0.5 * (distance / half_width) ** 2))
        alpha = np.maximum(alpha, (weight * taper * profile).astype(np.float32))
    return (_polarity(rng, n) * contrast.astype(np.float32) * _cut(alpha)).astype(np.float32)


def spot(rng: np.random.Generator, n: int, size: int, boldness: float = 1.0) -> np.ndarray:
    """Spots: 1-6 irregular blobs around a cluster centre, of varied size, softness and contrast."""
    y, x = pixel_grid(size)
    count = rng.integers(1, MAX_SPOTS + 1, (n, 1, 1))
    centre_x = (rng.uniform(0.2, 0.8, (n, 1, 1)) * size).astype(np.float32)
    centre_y = (rng.uniform(0.2, 0.8, (n, 1, 1)) * size).astype(np.float32)
    spread = (rng.uniform(0.0, 0.15, (n, 1, 1)) * size).astype(np.float32)
    scale = rng.uniform(0.012, 0.06, (n, 1, 1)) * boldness  # typical spot radius, fraction of size
    softness = rng.uniform(0.05, 0.6, (n, 1, 1)).astype(np.float32)  # edge width / radius: hard .. soft
    contrast = _bolder_contrast(rng.uniform(0.1, 0.45, (n, 1, 1)), boldness).astype(np.float32)
    alpha = np.zeros((n, size, size), dtype=np.float32)
    for index in range(MAX_SPOTS):
        present = index < count
        cx = centre_x + (rng.normal(0, 1, (n, 1, 1)) * spread).astype(np.float32)
        cy = centre_y + (rng.normal(0, 1, (n, 1, 1)) * spread).astype(np.float32)
        radius = np.maximum(scale * rng.lognormal(0, 0.35, (n, 1, 1)) * size, 1.0).astype(np.float32)
        aspect = rng.uniform(0.55, 1.0, (n, 1, 1)).astype(np.float32)
        tilt = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        dx, dy = x - cx, y - cy
        along = dx * np.cos(tilt) + dy * np.sin(tilt)
        across = (-dx * np.sin(tilt) + dy * np.cos(tilt)) / aspect
        distance = np.sqrt(along**2 + across**2)
        phi = np.arctan2(across, along)
        lobes = rng.uniform(0, 0.2, (n, 2, 1, 1)).astype(np.float32)
        phases = rng.uniform(0, 2 * np.pi, (n, 2, 1, 1)).astype(np.float32)
        boundary = radius * (1 + lobes[:, 0] * np.cos(2 * phi + phases[:, 0]) + lobes[:, 1] * np.cos(3 * phi + phases[:, 1]))
        edge = 1.0 / (1.0 + np.exp(np.minimum((distance - boundary) / (softness * radius + 0.3), 30.0)))
        strength = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
        alpha = np.maximum(alpha, np.where(present, strength * edge, 0.0).astype(np.float32))
    return (_polarity(rng, n) * contrast * _cut(alpha)).astype(np.float32)


DEFECTS: dict[str, Defect] = {"scratch": scratch, "spot": spot}
