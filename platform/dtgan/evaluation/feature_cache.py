"""Fingerprints of image sets and weights, and the cache keys of real-image features.

torch-fidelity caches features under ``<input2_cache_name>-<extractor name>-...`` and knows nothing of the
data or the weights behind either name, so the name we give it must change whenever they change: it is a
hash of (data fingerprint, split, selection, image size, extractor name, weights fingerprint). The cache itself
is ours (``.npz``, never unpickled), not torch-fidelity's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dtgan.utils.atomic import atomic_path

log = logging.getLogger(__name__)

FINGERPRINT_CHARS = 16
_CHUNK_BYTES = 1 << 20
CACHE_ARRAY = "features"


def fingerprint_images(ids: list[str] | tuple[str, ...], images_uint8: torch.Tensor) -> str:
    """Short sha256 of the row ids and the decoded pixels (N, C, H, W) uint8: changes with any image,
    any row, the order of rows and the decoded size."""
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {images_uint8.dtype}")
    digest = hashlib.sha256()
    digest.update(json.dumps([list(images_uint8.shape), [str(i) for i in ids]]).encode())
    digest.update(np.ascontiguousarray(images_uint8.cpu().numpy()).tobytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def sha256_file(path: str | Path) -> str:
    """The full hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_file(path: str | Path) -> str:
    """Short sha256 of a file's bytes (feature extractor weights)."""
    return sha256_file(path)[:FINGERPRINT_CHARS]


@dataclass(frozen=True)
class RealSetKey:
    """What a set of real-image features depends on."""

    data_fingerprint: str  # fingerprint_images of the whole decoded split
    split: str
    selection: str  # which rows of the split, e.g. "product=A;defects=scratch,spot"
    img_size: int
    extractor: str
    weights_fingerprint: str

    def cache_name(self) -> str:
        """The ``input2_cache_name`` handed to torch-fidelity: readable prefix + hash of every field."""
        payload = json.dumps(self.__dict__, sort_keys=True).encode()
        return f"dtgan-real-{self.split}-{hashlib.sha256(payload).hexdigest()[:FINGERPRINT_CHARS]}"


def usable_cache_entry(path: Path, check: Callable[[Path], object], what: str) -> bool:
    """True when the cache file ``path`` exists and ``check(path)`` reads it. A file that fails its check
    (truncated, foreign, another format) is removed with a warning, so the caller rebuilds it instead of every
    later evaluation failing on it."""
    if not path.is_file():
        return False
    try:
        check(path)
    except Exception as exc:  # a corrupt file raises whatever its reader raises
        log.warning("%s %s is unreadable (%s); removed, building it again", what, path, type(exc).__name__)
        path.unlink(missing_ok=True)
        return False
    return True


def cached_feature_file(cache_root: str | Path, cache_name: str, extractor: str, layer: str) -> Path:
    """Where one real set's features of one layer are cached: ``<cache_name>-<extractor>-features-<layer>.npz``.

    ``.npz`` read with ``allow_pickle=False`` cannot carry code (torch-fidelity's own ``.pt`` cache is unpickled
    with ``weights_only=False``, so a planted file would run on the next evaluation); its files are never read.
    """
    return Path(cache_root) / f"{cache_name}-{extractor}-features-{layer}.npz"


def is_cached(cache_root: str | Path, cache_name: str, extractor: str, layer: str) -> bool:
    """True when the features will be read from the cache instead of computed."""
    return cached_feature_file(cache_root, cache_name, extractor, layer).is_file()


def read_cached_features(path: Path) -> torch.Tensor | None:
    """(N, D) float32 features of a cache file, or None (with a warning) when it is not one we wrote."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            array = npz[CACHE_ARRAY]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning(
            "feature cache %s is unreadable (%s); computing the features again", path, type(exc).__name__
        )
        return None
    if array.ndim != 2 or array.dtype != np.float32:
        log.warning(
            "feature cache %s holds %s %s, not (N, D) float32; computing again",
            path,
            array.dtype,
            array.shape,
        )
        return None
    return torch.from_numpy(array)


def write_cached_features(path: Path, features: torch.Tensor) -> None:
    """Save (N, D) features as ``.npz`` atomically (a reader never sees half a file)."""
    array = features.detach().cpu().numpy().astype(np.float32, copy=False)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh, **{CACHE_ARRAY: array}
        )  # a file object: np.savez would append ".npz" to the temporary name
