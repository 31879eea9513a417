"""Procedural product backgrounds, rendered a batch at a time: brushed, cast, woven, turned, and the second
data set's knurled, coated and grained surfaces.

Every renderer maps (rng, n, size) to float32 (n, size, size) in about [0, 1]; lengths are fractions of
``size`` so that an image looks the same at any resolution. Per-image orientation varies here; lighting and
sensor noise are applied by the benchmark for all products alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Texture = Callable[[np.random.Generator, int, int], np.ndarray]


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) pixel-centre coordinates, each (size, size) float32, in pixels."""
    axis = np.arange(size, dtype=np.float32) + 0.5
    return np.meshgrid(axis, axis, indexing="ij")


def smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise (n, size, size), unit-ish std: a (cells+1)^2 lattice, bilinearly interpolated."""
    lattice = rng.standard_normal((n, cells + 1, cells + 1), dtype=np.float32)
    position = (np.arange(size, dtype=np.float32) + 0.5) / size * cells
    low = np.minimum(position.astype(np.int64), cells - 1)
    frac = position - low
    weights = np.zeros((size, cells + 1), dtype=np.float32)  # (size, cells+1) interpolation matrix
    weights[np.arange(size), low] = 1.0 - frac
    weights[np.arange(size), low + 1] = frac
    return weights @ lattice @ weights.T


def blurred_noise(rng: np.random.Generator, n: int, size: int, sigma_px: float) -> np.ndarray:
    """White noise blurred by a Gaussian of ``sigma_px`` (FFT), normalised to unit std per image."""
    white = rng.standard_normal((n, size, size), dtype=np.float32)
    freq_y = np.fft.fftfreq(size).astype(np.float32)[:, None]
    freq_x = np.fft.rfftfreq(size).astype(np.float32)[None, :]
    transfer = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (freq_y**2 + freq_x**2))
    blurred = np.fft.irfft2(np.fft.rfft2(white) * transfer, s=(size, size)).astype(np.float32)
    return blurred / (blurred.std(axis=(1, 2), keepdims=True) + 1e-6)


def profile_lookup(profile: np.ndarray, coordinate: np.ndarray) -> np.ndarray:
    """Linear interpolation of per-image 1-D profiles (n, L) at coordinates (n, H, W), clipped to [0, L-1]."""
    n, length = profile.shape
    coordinate = np.clip(coordinate, 0.0, length - 1.001)
    floor = np.floor(coordinate)
    frac = coordinate - floor
    low = floor.astype(np.int32)
    low += (np.arange(n, dtype=np.int32) * length)[:, None, None]  # index into the flattened profiles
    flat = profile.ravel()
    a = flat[low]
    return a + frac * (flat[low + 1] - a)


def _smoothed_profile(rng: np.random.Generator, n: int, length: int, width: int) -> np.ndarray:
    """Random 1-D profiles (n, length), box-smoothed over ``width`` samples (running mean), unit std."""
    white = rng.standard_normal((n, length + width), dtype=np.float32)
    if width > 1:
        summed = np.cumsum(white, axis=1)
        white = (summed[:, width:] - summed[:, :-width]) / width
    else:
        white = white[:, :length]
    return white / (white.std(axis=1, keepdims=True) + 1e-6)


def brushed(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Brushed metal: fine anisotropic streaks along a random direction, slowly varying in strength."""
    y, x = pixel_grid(size)
    theta = rng.uniform(0.0, np.pi, size=(n, 1, 1)).astype(np.float32)
    across = x * np.cos(theta) + y * np.sin(theta) + 1.5 * size  # (n, H, W) across the streaks, pixels, >= 0
    fine = profile_lookup(_smoothed_profile(rng, n, 3 * size, 1), across)
    coarse = profile_lookup(_smoothed_profile(rng, n, 3 * size, max(2, size // 24)), across)
    strength = 1.0 + 0.35 * smooth_noise(rng, n, size, 3)  # streaks fade in and out along their length
    mottle = smooth_noise(rng, n, size, 4)
    return 0.55 + 0.045 * strength * fine + 0.05 * coarse + 0.03 * mottle


def cast(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Sand-blasted cast surface: isotropic grain, medium blotches and sparse dark pits."""
    grain = blurred_noise(rng, n, size, sigma_px=0.007 * size)
    blotch = smooth_noise(rng, n, size, 10)
    pit_depth = np.clip(grain - 2.6, 0.0, None)  # the highest ~0.5% of the grain become dark pits
    return 0.45 + 0.07 * grain + 0.035 * blotch - 0.3 * pit_depth


def woven(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Woven periodic pattern: a plain weave of rounded threads at a small random rotation."""
    y, x = pixel_grid(size)
    theta = rng.uniform(-np.pi / 10, np.pi / 10, size=(n, 1, 1)).astype(np.float32)
    period = (size / rng.uniform(9.0, 13.0, size=(n, 1, 1))).astype(np.float32)  # pixels per thread
    u = (x * np.cos(theta) + y * np.sin(theta)) / period + rng.uniform(0, 2, (n, 1, 1)).astype(np.float32)
    v = (-x * np.sin(theta) + y * np.cos(theta)) / period + rng.uniform(0, 2, (n, 1, 1)).astype(np.float32)
    cell_u, cell_v = np.floor(u), np.floor(v)
    over = ((cell_u + cell_v) % 2) == 0  # which thread lies on top in this crossing
    across = np.where(over, v - cell_v, u - cell_u)  # position across the top thread, 0..1
    along = np.where(over, u - cell_u, v - cell_v)
    thread = np.sqrt(np.sin(np.pi * across)) * (0.75 + 0.25 * np.sin(np.pi * along))  # rounded cross-section
    fibre = rng.standard_normal((n, size, size), dtype=np.float32)  # ~pixel-scale fibres
    return 0.3 + 0.38 * thread + 0.025 * fibre


def turned(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Turned (lathe-machined) surface: fine arcs around a centre outside the image."""
    y, x = pixel_grid(size)
    angle = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    distance = (rng.uniform(0.9, 2.5, size=(n, 1, 1)) * size).astype(np.float32)
    centre_x = size / 2 + distance * np.cos(angle)
    centre_y = size / 2 + distance * np.sin(angle)
    radius = np.sqrt((x - centre_x) ** 2 + (y - centre_y) ** 2)
    pitch = (size / rng.uniform(28.0, 40.0, size=(n, 1, 1))).astype(np.float32)
    grooves = np.sin(2 * np.pi * radius / pitch) ** 2
    chatter = profile_lookup(_smoothed_profile(rng, n, 4 * size, 2), radius - distance + 1.5 * size)
    return 0.42 + 0.12 * grooves + 0.03 * chatter + 0.03 * smooth_noise(rng, n, size, 3)


def _shaded(height: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Lambert-like shading of height fields (n, H, W) lit from per-image directions ``light`` (n, 1, 1), radians:
    the height's slope (per pixel) along the light direction."""
    slope_y, slope_x = np.gradient(height, axis=(1, 2))
    return slope_x * np.cos(light) + slope_y * np.sin(light)


def knurled(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Diamond knurl: two sets of helical grooves crossing at +-(25-40) degrees, leaving lit pyramids.

    The height is min(tri(u), tri(v)) of two triangle waves across the grooves; its four facets catch a
    side light differently, and the cylinder the knurl is rolled on darkens towards two image edges.
    """
    y, x = pixel_grid(size)
    axis = rng.uniform(0.0, np.pi, (n, 1, 1)).astype(np.float32)  # the cylinder's axis in the image
    half_angle = np.deg2rad(rng.uniform(25.0, 40.0, (n, 1, 1))).astype(np.float32)
    pitch = (size / rng.uniform(6.0, 9.0, (n, 1, 1))).astype(np.float32)  # pixels per groove
    phase = rng.uniform(0, 1, (n, 2, 1, 1)).astype(np.float32)
    wear = 0.25 * smooth_noise(rng, n, size, 4)  # worn (flattened) patches
    u = (x * np.cos(axis + half_angle) + y * np.sin(axis + half_angle)) / pitch + phase[:, 0]
    v = (x * np.cos(axis - half_angle) + y * np.sin(axis - half_angle)) / pitch + phase[:, 1]
    tri_u = np.abs(u - np.floor(u) - 0.5)  # 0 at a groove bottom .. 0.5 at a crest
    tri_v = np.abs(v - np.floor(v) - 0.5)
    height = np.minimum(tri_u, tri_v) * np.clip(1.0 - wear, 0.5, 1.2) * pitch  # pixels
    light = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    across_axis = (-(x - size / 2) * np.sin(axis) + (y - size / 2) * np.cos(axis)) / size  # -0.7..0.7
    curvature = rng.uniform(0.3, 0.9, (n, 1, 1)).astype(np.float32)
    groove_dark = np.exp(-((np.minimum(tri_u, tri_v) / 0.08) ** 2))  # dirt and shadow in the groove bottoms
    fine = rng.standard_normal((n, size, size), dtype=np.float32)
    return (
        0.52
        + 0.16 * _shaded(height, light)
        - 0.12 * groove_dark
        - curvature * 0.35 * across_axis**2
        + 0.015 * fine
    )


def coated(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Painted (powder-coated) surface with orange peel: smooth isotropic dimples seen under a side light,
    a soft gloss band and almost no fine grain."""
    sigma_px = 0.016 * size  # dimple size
    peel = blurred_noise(rng, n, size, sigma_px=sigma_px)  # unit std; its slope is ~1/sigma_px per pixel
    light = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    depth = rng.uniform(0.5, 1.0, (n, 1, 1)).astype(np.float32)
    y, x = pixel_grid(size)
    band_angle = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    band_at = rng.uniform(0.2, 0.8, (n, 1, 1)).astype(np.float32)
    across_band = (x * np.cos(band_angle) + y * np.sin(band_angle)) / size  # -1.4..1.4
    band = np.exp(-(((across_band - band_at) / 0.3) ** 2))  # a broad specular reflection of the lamp
    tint = rng.uniform(0.36, 0.56, (n, 1, 1)).astype(np.float32)  # paint shade per part
    fine = rng.standard_normal((n, size, size), dtype=np.float32)
    return tint + 0.11 * depth * sigma_px * _shaded(peel, light) + 0.12 * band + 0.006 * fine


def grained(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Wood grain: growth rings (a warped sawtooth of varying width along one direction) with fine fibres
    along them and a few darker streaks."""
    y, x = pixel_grid(size)
    theta = rng.uniform(-np.pi / 6, np.pi / 6, (n, 1, 1)).astype(np.float32) + rng.choice(
        np.array([0.0, np.pi / 2], np.float32), (n, 1, 1)
    )
    across = x * np.cos(theta) + y * np.sin(theta)  # across the rings, pixels
    warp = (0.06 * size) * smooth_noise(rng, n, size, 3) + (0.015 * size) * smooth_noise(rng, n, size, 9)
    ring_width = (size / rng.uniform(5.0, 9.0, (n, 1, 1))).astype(np.float32)
    ring = (across + warp) / ring_width + rng.uniform(0, 1, (n, 1, 1)).astype(np.float32)
    phase = ring - np.floor(ring)  # 0..1 through one year: light early wood, then dark late wood
    late_wood = 1.0 / (1.0 + np.exp(-(phase - 0.72) / 0.05))
    fibres = profile_lookup(_smoothed_profile(rng, n, 3 * size, 1), across + 0.5 * warp + 1.5 * size)
    streaks = profile_lookup(
        _smoothed_profile(rng, n, 3 * size, max(2, size // 16)), across + warp + 1.5 * size
    )
    tone = 0.6 + 0.03 * smooth_noise(rng, n, size, 2)  # slow colour drift
    return tone - 0.2 * late_wood + 0.025 * fibres - 0.03 * np.clip(streaks, 0.0, None)


# Product name -> texture, in the benchmark's order (the first three are the default products). Append new
# entries at the end: a product's registry position keys its random numbers (``synth.render_chunk``).
TEXTURES: dict[str, Texture] = {
    "brushed": brushed,
    "cast": cast,
    "woven": woven,
    "turned": turned,
    "knurled": knurled,
    "coated": coated,
    "grained": grained,
}


def lighting(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image illumination: (gain (n,1,1), offset field (n, size, size)) = exposure, gradient, vignette."""
    y, x = pixel_grid(size)
    yc, xc = (y / size - 0.5), (x / size - 0.5)
    gain = rng.uniform(0.8, 1.2, size=(n, 1, 1)).astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    slope = rng.uniform(0.0, 0.16, size=(n, 1, 1)).astype(np.float32)
    vignette = rng.uniform(0.0, 0.25, size=(n, 1, 1)).astype(np.float32)
    offset = rng.uniform(-0.06, 0.06, size=(n, 1, 1)).astype(np.float32)
    field = offset + slope * (xc * np.cos(direction) + yc * np.sin(direction)) - vignette * (xc**2 + yc**2)
    return gain, field
