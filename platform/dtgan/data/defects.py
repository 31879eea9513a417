"""Procedural foreground defects, rendered a batch at a time as signed intensity changes with exact masks.

A renderer maps (rng, n, size, boldness) to ``delta`` float32 (n, size, size): the change added to a clean
background, exactly zero outside the defect mask ``delta != 0``. Lengths are fractions of ``size``.
``boldness`` b (1 = the SDI-like default) widens scratches and cracks and enlarges spots and dents b times,
enlarges the already large stains sqrt(b) times, and raises every contrast b times (capped at MAX_CONTRAST),
drawing the same random numbers: a data set meant for small images (32 px on a CPU) keeps defects that a
downsampling would otherwise blur into the texture. ``scratch`` and ``spot`` are the default data set's
defects; ``crack``, ``stain`` and ``dent`` make a second, differently shaped one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dtgan.data.textures import pixel_grid, smooth_noise

Defect = Callable[[np.random.Generator, int, int, float], np.ndarray]
MASK_THRESHOLD = 0.05  # alpha below this is cut to exactly 0, so the mask is where the image changed
DARK_PROBABILITY = 0.65  # most scratches and spots are darker than the surface
MAX_STROKES = 3
MAX_SPOTS = 6
MAX_CONTRAST = 0.6  # of the intensity range, after boldness
CRACK_SEGMENTS = 14  # straight pieces of a crack's main line
CRACK_BRANCH_SEGMENTS = 6
MAX_CRACK_BRANCHES = 2
MAX_STAIN_RADIUS = 0.4  # of size, after boldness
DENT_LIP, DENT_LIP_AT, DENT_LIP_WIDTH = (
    0.25,
    1.15,
    0.2,
)  # a dent's raised lip: height, radius, width (bowl radii)


def _polarity(rng: np.random.Generator, n: int) -> np.ndarray:
    """-1 (dark) or +1 (bright) per image, (n, 1, 1)."""
    return np.where(rng.random((n, 1, 1)) < DARK_PROBABILITY, -1.0, 1.0).astype(np.float32)


def _cut(alpha: np.ndarray) -> np.ndarray:
    return np.where(alpha >= MASK_THRESHOLD, alpha, 0.0).astype(np.float32)


def _bolder_contrast(contrast: np.ndarray, boldness: float) -> np.ndarray:
    return np.minimum(contrast * boldness, MAX_CONTRAST) if boldness != 1.0 else contrast


def _ellipse_frame(x, y, cx, cy, tilt, aspect):
    """Pixel coordinates in an ellipse's frame: (along its axis, across it scaled by 1/aspect, the distance from
    its centre in that scaled frame), each (n, H, W)."""
    dx, dy = x - cx, y - cy
    along = dx * np.cos(tilt) + dy * np.sin(tilt)
    across = (-dx * np.sin(tilt) + dy * np.cos(tilt)) / aspect
    return along, across, np.sqrt(along**2 + across**2)


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
    half_width = np.maximum(half_width * size * boldness, 0.45).astype(
        np.float32
    )  # pixels, at least ~1 px wide
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
        profile = np.where(
            heavy, 1.0 / (1.0 + (distance / half_width) ** 4), np.exp(-0.5 * (distance / half_width) ** 2)
        )
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
        along, across, distance = _ellipse_frame(x, y, cx, cy, tilt, aspect)
        phi = np.arctan2(across, along)
        lobes = rng.uniform(0, 0.2, (n, 2, 1, 1)).astype(np.float32)
        phases = rng.uniform(0, 2 * np.pi, (n, 2, 1, 1)).astype(np.float32)
        boundary = radius * (
            1 + lobes[:, 0] * np.cos(2 * phi + phases[:, 0]) + lobes[:, 1] * np.cos(3 * phi + phases[:, 1])
        )
        edge = 1.0 / (1.0 + np.exp(np.minimum((distance - boundary) / (softness * radius + 0.3), 30.0)))
        strength = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
        alpha = np.maximum(alpha, np.where(present, strength * edge, 0.0).astype(np.float32))
    return (_polarity(rng, n) * contrast * _cut(alpha)).astype(np.float32)


def _segment_distance(x, y, ax, ay, bx, by) -> np.ndarray:
    """Distance (n, H, W) from pixels (x, y) to the segments a-b, each end (n, 1, 1)."""
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy + 1e-6), 0.0, 1.0)
    return np.sqrt((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2)


def polyline_alpha(x, y, points: np.ndarray, width: np.ndarray, weight) -> np.ndarray:
    """Alpha (n, H, W) of a polyline through ``points`` (n, k+1, 2, 1, 1) whose Gaussian half-width
    ``width`` (n, k, 1, 1) may change per segment; ``weight`` (n, 1, 1) scales it (0 = absent)."""
    alpha = np.zeros(np.broadcast_shapes(x.shape, points.shape[:1] + x.shape), dtype=np.float32)
    for k in range(points.shape[1] - 1):
        distance = _segment_distance(
            x, y, points[:, k, 0], points[:, k, 1], points[:, k + 1, 0], points[:, k + 1, 1]
        )
        alpha = np.maximum(alpha, (weight * np.exp(-0.5 * (distance / width[:, k]) ** 2)).astype(np.float32))
    return alpha


def random_walk(
    rng: np.random.Generator,
    start: np.ndarray,
    heading: np.ndarray,
    steps: int,
    step_px: np.ndarray,
    jag: np.ndarray,
) -> np.ndarray:
    """A jagged random walk (n, steps+1, 2, 1, 1) from ``start`` (n, 2, 1, 1): each step turns by a normal
    angle of std ``jag`` around a slowly drifting heading (n, 1, 1)."""
    n = start.shape[0]
    drift = rng.normal(0, 0.08, (n, 1, 1)).astype(np.float32)
    turns = (rng.normal(0, 1, (n, steps, 1, 1)) * jag[:, None]).astype(np.float32)
    lengths = (step_px[:, None] * rng.uniform(0.5, 1.5, (n, steps, 1, 1))).astype(np.float32)
    direction = (
        heading[:, None] + drift[:, None] * np.arange(steps, dtype=np.float32)[None, :, None, None] + turns
    )
    moves = (
        np.stack([np.cos(direction), np.sin(direction)], axis=2) * lengths[:, :, None]
    )  # (n, steps, 2, 1, 1)
    return np.concatenate([start[:, None], start[:, None] + np.cumsum(moves, axis=1)], axis=1)


def crack(rng: np.random.Generator, n: int, size: int, boldness: float = 1.0) -> np.ndarray:
    """Cracks: a thin jagged polyline (a random walk of straight pieces) that narrows towards its tip, with
    up to two thinner branches; nearly always darker than the surface."""
    y, x = pixel_grid(size)
    length = (rng.uniform(0.3, 0.8, (n, 1, 1)) * size).astype(np.float32)
    start = (rng.uniform(0.15, 0.85, (n, 2, 1, 1)) * size).astype(np.float32)
    heading = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    jag = rng.uniform(0.25, 0.7, (n, 1, 1)).astype(np.float32)  # radians per piece
    main = random_walk(rng, start, heading, CRACK_SEGMENTS, length / CRACK_SEGMENTS, jag)
    half_width = np.maximum(rng.uniform(0.003, 0.009, (n, 1, 1)) * size * boldness, 0.45).astype(np.float32)
    narrowing = (
        1.0 - 0.6 * np.arange(CRACK_SEGMENTS, dtype=np.float32) / CRACK_SEGMENTS
    )  # widest at the origin
    width = np.maximum(half_width[:, None] * narrowing[None, :, None, None], 0.4)
    alpha = polyline_alpha(x, y, main, width, 1.0)
    branches = rng.integers(0, MAX_CRACK_BRANCHES + 1, (n, 1, 1))
    for branch in range(MAX_CRACK_BRANCHES):
        fork = rng.integers(2, CRACK_SEGMENTS - 2, n)  # the vertex of the main line it leaves from
        fork_at = main[np.arange(n), fork]  # (n, 2, 1, 1)
        side = rng.choice([-1.0, 1.0], (n, 1, 1)).astype(np.float32)
        turn = heading + side * rng.uniform(0.4, 1.1, (n, 1, 1)).astype(np.float32)
        scale = rng.uniform(0.2, 0.45, (n, 1, 1)).astype(np.float32)
        points = random_walk(
            rng, fork_at, turn, CRACK_BRANCH_SEGMENTS, length * scale / CRACK_BRANCH_SEGMENTS, jag
        )
        taper = 1.0 - 0.5 * np.arange(CRACK_BRANCH_SEGMENTS, dtype=np.float32) / CRACK_BRANCH_SEGMENTS
        branch_width = np.maximum(0.7 * half_width[:, None] * taper[None, :, None, None], 0.4)
        weight = np.where(branch < branches, rng.uniform(0.6, 0.9, (n, 1, 1)), 0.0).astype(np.float32)
        alpha = np.maximum(alpha, polyline_alpha(x, y, points, branch_width, weight))
    contrast = _bolder_contrast(rng.uniform(0.18, 0.45, (n, 1, 1)), boldness).astype(np.float32)
    polarity = np.where(rng.random((n, 1, 1)) < 0.9, -1.0, 1.0).astype(np.float32)  # a gap is dark
    return (polarity * contrast * _cut(alpha)).astype(np.float32)


def _irregular_radius(
    rng: np.random.Generator, n: int, phi: np.ndarray, lobe_max: float, harmonics: tuple[int, ...]
) -> np.ndarray:
    """1 + a sum of random cosine lobes of ``phi`` (n, H, W): a wobbly outline around a unit circle."""
    shape = np.ones_like(phi)
    for harmonic in harmonics:
        amplitude = rng.uniform(0, lobe_max / harmonic**0.5, (n, 1, 1)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
        shape = shape + amplitude * np.cos(harmonic * phi + phase)
    return shape


def stain(rng: np.random.Generator, n: int, size: int, boldness: float = 1.0) -> np.ndarray:
    """Stains: one large, faint, irregular blotch with a mottled inside and, often, a darker dried rim
    (a coffee ring); far larger and fainter than a spot."""
    y, x = pixel_grid(size)
    cx = (rng.uniform(0.25, 0.75, (n, 1, 1)) * size).astype(np.float32)
    cy = (rng.uniform(0.25, 0.75, (n, 1, 1)) * size).astype(np.float32)
    radius = np.minimum(rng.uniform(0.13, 0.27, (n, 1, 1)) * boldness**0.5, MAX_STAIN_RADIUS) * size
    radius = radius.astype(np.float32)
    aspect = rng.uniform(0.6, 1.0, (n, 1, 1)).astype(np.float32)
    tilt = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    along, across, distance = _ellipse_frame(x, y, cx, cy, tilt, aspect)
    boundary = radius * _irregular_radius(rng, n, np.arctan2(across, along), 0.25, (2, 3, 5, 7))
    edge_px = (rng.uniform(0.03, 0.12, (n, 1, 1)) * radius + 0.5).astype(np.float32)  # soft .. crisp rim
    inside = 1.0 / (1.0 + np.exp(np.minimum((distance - boundary) / edge_px, 30.0)))
    rim_width = (rng.uniform(0.04, 0.1, (n, 1, 1)) * radius + 0.6).astype(np.float32)
    rim = np.exp(-0.5 * ((distance - boundary + rim_width) / rim_width) ** 2)
    rim_weight = np.where(rng.random((n, 1, 1)) < 0.6, rng.uniform(0.5, 1.0, (n, 1, 1)), 0.0).astype(
        np.float32
    )
    fill = rng.uniform(0.35, 0.8, (n, 1, 1)).astype(np.float32)
    mottle = np.clip(1.0 + 0.3 * smooth_noise(rng, n, size, 7), 0.4, 1.6)
    alpha = np.clip(
        fill * mottle * inside + rim_weight * rim * (distance < boundary + 3 * rim_width), 0.0, 1.0
    )
    contrast = _bolder_contrast(rng.uniform(0.07, 0.18, (n, 1, 1)), boldness).astype(np.float32)
    return (_polarity(rng, n) * contrast * _cut(alpha.astype(np.float32))).astype(np.float32)


def dent(rng: np.random.Generator, n: int, size: int, boldness: float = 1.0) -> np.ndarray:
    """Dents: a round bowl pressed into the surface, seen under a side light: bright on the flank facing the
    light, dark on the other, with a faint raised lip; the change is signed within one defect."""
    y, x = pixel_grid(size)
    cx = (rng.uniform(0.2, 0.8, (n, 1, 1)) * size).astype(np.float32)
    cy = (rng.uniform(0.2, 0.8, (n, 1, 1)) * size).astype(np.float32)
    radius = np.maximum(rng.uniform(0.03, 0.09, (n, 1, 1)) * boldness * size, 1.5).astype(np.float32)
    aspect = rng.uniform(0.7, 1.0, (n, 1, 1)).astype(np.float32)
    tilt = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    light = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    dx, dy = x - cx, y - cy
    along = (dx * np.cos(tilt) + dy * np.sin(tilt)) / radius
    across = (-dx * np.sin(tilt) + dy * np.cos(tilt)) / (radius * aspect)
    r2 = along**2 + across**2
    r = np.sqrt(r2)  # 1 at the rim, in bowl radii
    bowl = np.exp(-2.0 * r2)  # depth profile: height = -bowl + LIP * lip
    lip = np.exp(-(((r - DENT_LIP_AT) / DENT_LIP_WIDTH) ** 2))
    # Radial slope of the height, and its share along the light: a lit flank faces the light.
    dh_dr = 4.0 * r * bowl - DENT_LIP * 2.0 * (r - DENT_LIP_AT) / DENT_LIP_WIDTH**2 * lip
    towards_light = (along * np.cos(light - tilt) + across * np.sin(light - tilt)) / (r + 1e-6)
    shade = np.clip(dh_dr * towards_light / 1.2, -1.0, 1.0)  # |slope| peaks at ~1.2 on the bowl's flanks
    floor = 0.35 * bowl  # the bowl's floor is a little darker: it sees less of the lamp
    contrast = _bolder_contrast(rng.uniform(0.15, 0.35, (n, 1, 1)), boldness).astype(np.float32)
    support = _cut(np.maximum(bowl, 0.5 * lip).astype(np.float32)) > 0
    delta = contrast * np.where(support, np.clip(shade - floor, -1.0, 1.0), 0.0)
    # Where the shading happens to cancel exactly, keep a change too small to see, so the mask is the dent.
    return np.where(support & (delta == 0), -1e-4, delta).astype(np.float32)


# Defect name -> renderer. Append new entries at the end: a defect's position (after ``normal``) keys its
# random numbers (``synth.render_chunk``), so existing defects keep their images.
DEFECTS: dict[str, Defect] = {"scratch": scratch, "spot": spot, "crack": crack, "stain": stain, "dent": dent}
