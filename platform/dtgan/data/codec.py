"""Image bytes <-> gray uint8 arrays: a fast 8-bit gray PNG writer and a Pillow reader for PNG/JPEG/BMP/TIFF."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from dtgan.errors import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow modes we read as they are; CONVERTED_MODES are converted to gray first (alpha dropped; importers count
# them in one warning); anything else (float, ...) is refused with the file's name.
SUPPORTED_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "RGB")
CONVERTED_MODES = ("1", "P", "PA", "LA", "La", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png_gray(image: np.ndarray, compress_level: int = 1) -> bytes:
    """Encode an (H, W) uint8 array as an 8-bit grayscale PNG.

    Written directly with zlib (filter type 0) because Pillow's encoder was ~3x slower here and this is
    the bottleneck of ``dtgan data synth``; zlib releases the GIL, so encoding threads scale.
    """
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected an (H, W) uint8 array, got {image.dtype} {image.shape}")
    height, width = image.shape
    raw = np.empty((height, width + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type "None" for every scanline
    raw[:, 1:] = image
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit, gray, deflate, no interlace
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level))
        + _png_chunk(b"IEND", b"")
    )


def _to_gray_uint8(image: Image.Image, where: str) -> np.ndarray:
    """(H, W) uint8 from a decoded Pillow image: 16-bit scaled to 8 bits, RGB to luma (docs/model.md#a20)."""
    if image.mode in CONVERTED_MODES:  # 1-bit, palette, alpha, CMYK: to RGB (alpha dropped), then luma
        return np.asarray(image.convert("RGB").convert("L"), dtype=np.uint8)
    if image.mode not in SUPPORTED_MODES:
        raise DataError(
            f"{where}: unsupported image mode {image.mode!r}; use one of "
            f"{', '.join(SUPPORTED_MODES + CONVERTED_MODES)}"
        )
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    if image.mode == "RGB":
        return np.asarray(image.convert("L"), dtype=np.uint8)
    wide = np.asarray(image).astype(np.int64)
    if wide.min() < 0 or wide.max() > 65535:
        raise DataError(f"{where}: 32-bit image with values outside 0..65535; convert it to 8 or 16 bits")
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)  # rounded 65535 -> 255


def decode_gray(data: bytes, where: str) -> np.ndarray:
    """Decode image bytes (8/16-bit gray or RGB) to an (H, W) uint8 array; ``where`` names it in errors."""
    return _open_gray(io.BytesIO(data), where)


def read_gray_file(path: str) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP, TIFF) as an (H, W) uint8 gray array."""
    return _open_gray(path, path)


def read_gray_file_and_mode(path: str) -> tuple[np.ndarray, str]:
    """:func:`read_gray_file` and the file's Pillow mode (for counting conversions)."""
    return _open_gray(path, path, with_mode=True)


def _open_gray(source, where: str, with_mode: bool = False):
    try:
        with Image.open(source) as image:
            image.load()  # decode now so that truncated files fail here, naming the file
            gray = _to_gray_uint8(image, where)
            return (gray, image.mode) if with_mode else gray
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot decode image ({exc})") from exc


def resize_gray(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W) uint8 image to (size, size), antialiased (bicubic; Pillow widens the kernel)."""
    if image.shape == (size, size):
        return image
    resized = Image.fromarray(image).resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a 0/255 mask to (size, size) so that it still covers the defect: area average, then any > 0."""
    if mask.shape == (size, size):
        return binarize_mask(mask)
    area = np.asarray(Image.fromarray(binarize_mask(mask)).resize((size, size), Image.Resampling.BOX))
    return binarize_mask(area)


def binarize_mask(mask: np.ndarray) -> np.ndarray:
    """A mask as 0/255 uint8: any non-zero pixel is defect."""
    return np.where(mask > 0, 255, 0).astype(np.uint8)
