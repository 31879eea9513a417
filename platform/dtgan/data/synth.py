"""The embedded benchmark: an SDI-like procedural data set with clean backgrounds and exact defect masks."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dtgan.data.codec import encode_png_gray
from dtgan.data.defects import DEFECTS
from dtgan.data.parquet_io import Rows, write_dataset
from dtgan.data.splits import CellSplit, split_held_out
from dtgan.data.textures import TEXTURES, lighting
from dtgan.data.vocab import NORMAL, Vocab
from dtgan.errors import DataError

log = logging.getLogger(__name__)

# SDI (paper Appendix A, Tables 5-7) per product position A, B, C: GAN-training images per defect, the
# normal images for GAN training and for synthesis, and the val+test images held out per cell. The i-th
# chosen defect takes the counts of SDI's i-th (i mod 2) defect, so other defect shapes keep SDI's imbalance.
SDI_GAN_TRAIN = {"scratch": (290, 117, 71), "spot": (58, 620, 208)}
DEFAULT_DEFECTS = ("scratch", "spot")
SDI_NORMAL_GAN_TRAIN = 700
SDI_NORMAL_GAN_HOLDOUT = 5500
SDI_HELD_OUT = 50
MIN_HELD_OUT = 10  # per cell, so that val (3) and test (7) stay non-empty at small scales
MIN_GAN_TRAIN = 4  # per non-empty cell
CHUNK = 128  # images rendered per task; each chunk has its own seeded RNG, so threads do not matter


@dataclass
class SynthSummary:
    """What was written and how fast."""

    path: str
    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (product, defect, split) -> n
    images: int = 0
    render_seconds: float = 0.0
    render_cpu_seconds: float = 0.0  # CPU time of all threads: a throughput measure that ignores other load
    total_seconds: float = 0.0
    unseen_cells: list[tuple[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        """Rendering + PNG encoding throughput (the Parquet write is excluded)."""
        return self.images / max(self.render_seconds, 1e-9)

    @property
    def images_per_cpu_second(self) -> float:
        return self.images / max(self.render_cpu_seconds, 1e-9)


def resolve_products(products: str | int | None) -> list[str]:
    """``None`` -> the first three textures; an int -> the first n; "a,b" -> those names, in registry order."""
    names = list(TEXTURES)
    if products is None:
        return names[:3]
    if isinstance(products, int) or str(products).isdigit():
        count = int(products)
        if not 1 <= count <= len(names):
            raise DataError(f"--products {count}: choose 1..{len(names)} products ({', '.join(names)})")
        return names[:count]
    chosen = [name.strip() for name in str(products).split(",") if name.strip()]
    unknown = [name for name in chosen if name not in TEXTURES]
    if unknown or not chosen:
        raise DataError(
            f"--products {products}: unknown product(s) {unknown}; choose from {', '.join(names)}"
        )
    return [name for name in names if name in chosen]


def resolve_defects(defects: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``None`` -> scratch, spot; "a,b" (or a list) -> those defect shapes, in the order given (it matters:
    the i-th takes SDI's i-th defect counts and the last one is the unseen cell)."""
    if defects is None:
        return list(DEFAULT_DEFECTS)
    chosen = [
        name.strip() for name in (defects.split(",") if isinstance(defects, str) else defects) if name.strip()
    ]
    unknown = [name for name in chosen if name not in DEFECTS]
    if unknown or not chosen or len(set(chosen)) != len(chosen):
        problem = f"unknown defect(s) {unknown}" if unknown else "name each defect once"
        raise DataError(f"--defects {defects}: {problem}; choose from {', '.join(DEFECTS)}")
    return chosen


def plan_benchmark(
    products: list[str], scale: float, defects: list[str] | None = None, held_out_per_cell: int | None = None
) -> dict[tuple[str, str], CellSplit]:
    """Images per split of every (product, defect) cell: SDI's counts times ``scale``, with floors.

    Product i takes SDI product ``"ABC"[i % 3]``'s counts and defect j SDI defect j's (``SDI_GAN_TRAIN``,
    cycled). With two or more products, the last product's last defect keeps its val/test images but has no
    ``gan_train`` images (an unseen combination, like MVTec Tile in App. E.4). ``held_out_per_cell`` replaces
    the scaled val+test count of every cell (a large test set for a classifier study, at any scale).
    """
    defects = list(DEFAULT_DEFECTS) if defects is None else defects
    sdi_counts = list(SDI_GAN_TRAIN.values())
    if not scale > 0:
        raise DataError(f"--scale {scale}: must be > 0")
    held_out = max(MIN_HELD_OUT, round(SDI_HELD_OUT * scale))
    if held_out_per_cell is not None:
        if held_out_per_cell < 2:
            raise DataError(f"--held-out-per-cell {held_out_per_cell}: needs >= 2 (one val, one test image)")
        held_out = held_out_per_cell
    val, test = split_held_out(held_out)
    plan: dict[tuple[str, str], CellSplit] = {}
    for position, product in enumerate(products):
        plan[(product, NORMAL)] = CellSplit(
            val,
            test,
            max(2 * MIN_GAN_TRAIN, round(SDI_NORMAL_GAN_TRAIN * scale)),
            max(2 * MIN_GAN_TRAIN, round(SDI_NORMAL_GAN_HOLDOUT * scale)),
        )
        for index, defect in enumerate(defects):
            counts = sdi_counts[index % len(sdi_counts)]
            gan_train = max(MIN_GAN_TRAIN, round(counts[position % 3] * scale))
            if len(products) > 1 and product == products[-1] and defect == defects[-1]:
                gan_train = 0
            plan[(product, defect)] = CellSplit(val, test, gan_train)
    return plan


def render_chunk(
    seed: int,
    product: str,
    defect: str,
    chunk: int,
    n: int,
    size: int,
    compress_level: int = 1,
    defect_boldness: float = 1.0,
):
    """Render and encode ``n`` images of one cell: lists of (image, mask, clean) PNG bytes.

    The RNG is keyed by (seed, product, defect, chunk) via their registry positions, so a product's images
    do not change when other products are added or removed.
    """
    rng = np.random.default_rng(
        [seed, list(TEXTURES).index(product), [NORMAL, *DEFECTS].index(defect), chunk]
    )
    background = TEXTURES[product](rng, n, size)  # (n, S, S) float32
    gain, field_ = lighting(rng, n, size)
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    noise *= rng.uniform(0.004, 0.025, (n, 1, 1)).astype(np.float32)  # sensor noise, per-image sigma
    background = np.clip(background * gain + field_, 0.08, 0.92)  # leave head-room for bright/dark defects
    clean = _quantize(background + noise)
    empty_mask = encode_png_gray(np.zeros((size, size), np.uint8), compress_level)
    if defect == NORMAL:
        return [(encode_png_gray(image, compress_level), empty_mask, None) for image in clean]
    delta = DEFECTS[defect](rng, n, size, defect_boldness)  # exactly 0 outside the defect
    image = _quantize(background + delta + noise)
    mask = np.where(delta != 0, 255, 0).astype(np.uint8)
    return [
        (
            encode_png_gray(image[i], compress_level),
            encode_png_gray(mask[i], compress_level),
            encode_png_gray(clean[i], compress_level),
        )
        for i in range(n)
    ]


def _quantize(x: np.ndarray) -> np.ndarray:
    """[0, 1] float -> uint8, rounded (clip first, so adding 0.5 and truncating rounds)."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def synthesize_benchmark(
    out_path: str,
    size: int = 128,
    scale: float = 0.1,
    seed: int = 0,
    products: str | int | None = None,
    threads: int | None = None,
    defect_boldness: float = 1.0,
    defects: str | list[str] | None = None,
    held_out_per_cell: int | None = None,
) -> SynthSummary:
    """Render the benchmark and write it atomically to ``out_path`` (a .parquet file); ``defect_boldness``
    > 1 renders wider, larger, stronger defects (``dtgan.data.defects``) for small-image presets;
    ``defects`` picks the defect shapes (``resolve_defects``; default scratch, spot)."""
    if not 16 <= size <= 1024:
        raise DataError(f"--size {size}: choose 16..1024 pixels")
    if not 0.25 <= defect_boldness <= 8:
        raise DataError(f"--defect-boldness {defect_boldness}: choose 0.25..8 (1 = the SDI-like default)")
    names = resolve_products(products)
    defect_names = resolve_defects(defects)
    plan = plan_benchmark(names, scale, defect_names, held_out_per_cell)
    tasks = []  # (product, defect, chunk index, n, split labels of the chunk)
    for (product, defect), cell in plan.items():
        labels = cell.labels()
        for chunk, start in enumerate(range(0, len(labels), CHUNK)):
            tasks.append((product, defect, chunk, labels[start : start + CHUNK]))
    summary = SynthSummary(path=out_path)
    rows = Rows.empty()
    started, started_cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads or min(4, os.cpu_count() or 1)) as pool:
        rendered = pool.map(
            lambda t: render_chunk(seed, t[0], t[1], t[2], len(t[3]), size, defect_boldness=defect_boldness),
            tasks,
        )
        for (product, defect, chunk, labels), images in zip(tasks, rendered):
            for offset, (split, (image, mask, clean)) in enumerate(zip(labels, images)):
                number = chunk * CHUNK + offset
                rows.append(
                    id=f"syn-{product}-{defect}-{number:06d}",
                    product=product,
                    defect=defect,
                    split=split,
                    source="synthetic",
                    image=image,
                    mask=mask,
                    clean=clean,
                )
                key = (product, defect, split)
                summary.counts[key] = summary.counts.get(key, 0) + 1
    summary.render_seconds = time.perf_counter() - started
    summary.render_cpu_seconds = time.process_time() - started_cpu
    summary.images = len(rows)
    summary.unseen_cells = [key for key, cell in plan.items() if cell.gan_train == 0]
    vocab = Vocab.from_labels(names, [NORMAL, *defect_names])
    info = {
        "generator": "dtgan data synth",
        "format_version": 1,
        "seed": seed,
        "size": size,
        "scale": scale,
        "defect_boldness": defect_boldness,
        "held_out_per_cell": held_out_per_cell,
        "products": names,
        "defects": defect_names,
        "unseen_cells": [list(cell) for cell in summary.unseen_cells],
    }
    write_dataset(out_path, rows, vocab, info)
    summary.total_seconds = time.perf_counter() - started
    log.info("wrote %d images to %s in %.2f s", summary.images, out_path, summary.total_seconds)
    return summary
