"""Defect masks of imported images: where a folder import finds them and which files count as masks.

A mask is found beside its image as ``<stem>_mask.<ext>`` (MVTec AD's ground-truth name), or, with a mask root that
mirrors the image root's ``<product>/<defect>/`` tree, at the same relative path under it, named ``<stem>.<ext>``
or ``<stem>_mask.<ext>``. A mask is a single-channel image (gray, 1-bit, 16-bit, palette indices; colour only when its channels are
equal) that is binary-able: black background and defect pixels, with at most ``SOFT_EDGE_FRACTION`` of its pixels
strictly between black and the brightest value (an antialiased edge). Any non-zero pixel is defect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dtgan.errors import DataError

MASK_SUFFIX = "_mask"
SOFT_EDGE_FRACTION = (
    0.2  # pixels strictly between 0 and the maximum, as a share of the mask: an antialiased edge
)
# A palette image counts by its indices (index 0 = background), as label tools save masks.
SINGLE_CHANNEL_MODES = ("1", "L", "P", "I;16", "I;16B", "I;16L", "I")
EQUAL_CHANNEL_MODES = ("RGB", "RGBA", "LA", "RGBX")  # accepted when every colour channel is the same


def is_mask_file(path: Path) -> bool:
    """``<stem>_mask.<ext>``: a mask beside its image, never imported as an image itself."""
    return path.stem.endswith(MASK_SUFFIX) and len(path.stem) > len(MASK_SUFFIX)


def find_mask(image: Path, relative: Path, mask_root: Path | None, suffixes: tuple[str, ...]) -> Path | None:
    """The mask of ``image`` (``relative`` to the image root): under ``mask_root`` first, then beside the image."""
    candidates: list[Path] = []
    stem = relative.with_suffix("")
    if mask_root is not None:
        for name in (stem.name, stem.name + MASK_SUFFIX):
            candidates += [
                mask_root / stem.parent / (name + suffix) for suffix in _with_image_suffix(image, suffixes)
            ]
    candidates += [
        image.parent / (image.stem + MASK_SUFFIX + suffix) for suffix in _with_image_suffix(image, suffixes)
    ]
    return next((c for c in candidates if c.is_file()), None)


def _with_image_suffix(image: Path, suffixes: tuple[str, ...]) -> list[str]:
    """The image's own suffix, then PNG, then the other image suffixes (in both cases)."""
    ordered = [image.suffix, ".png", *suffixes]
    out: list[str] = []
    for suffix in ordered:
        for variant in (suffix, suffix.lower(), suffix.upper()):
            if variant and variant not in out:
                out.append(variant)
    return out


def read_mask_file(path: Path) -> np.ndarray:
    """A mask file as (H, W) uint8 0/255; one-line DataError naming the file if it is not a binary-able mask."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in SINGLE_CHANNEL_MODES:
                values = np.asarray(image).astype(np.int64)
            elif mode in EQUAL_CHANNEL_MODES:
                rgb = np.asarray(image.convert("RGB")).astype(np.int64)
                if not (
                    np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
                ):
                    raise DataError(
                        f"{path}: mask is a colour image ({mode}); save it as a single-channel (gray) image with "
                        "black background and white defect"
                    )
                values = rgb[..., 0]
            else:
                raise DataError(
                    f"{path}: mask mode {mode!r} is not single-channel; save it as an 8-bit gray image with black "
                    "background and white defect"
                )
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode mask ({exc})") from exc
    top = int(values.max()) if values.size else 0
    if top > 0:
        between = float(((values > 0) & (values < top)).mean())
        if between > SOFT_EDGE_FRACTION:
            raise DataError(
                f"{path}: not a binary mask ({between:.0%} of its pixels are neither black nor its brightest value, "
                f"more than a soft edge's {SOFT_EDGE_FRACTION:.0%}); is it an image in the mask folder? Save the "
                "mask with black background and white defect"
            )
    return np.where(values > 0, 255, 0).astype(np.uint8)
