"""Fingerprints of image sets and weights, and the cache keys of real-image features.

torch-fidelity caches features under ``<input2_cache_name>-<extractor name>-...`` and knows nothing of the
data or the weights behind either name, so the name we give it must change whenever they change: it is a
hash of (data fingerprint, split, selection, image size, extractor name, weights fingerprint).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FINGERPRINT_CHARS = 16
_CHUNK_BYTES = 1 << 20


def fingerprint_images(ids: list[str] | tuple[str, ...], images_uint8: torch.Tensor) -> str:
    """Short sha256 of the row ids and the decoded pixels (N, C, H, W) uint8: changes with any image,
    any row, the order of rows and the decoded size."""
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"images must be uint8, got {images_uint8.dtype}")
    digest = hashlib.sha256()
    digest.update(json.dumps([list(images_uint8.shape), [str(i) for i in ids]]).encode())
    digest.update(np.ascontiguousarray(images_uint8.cpu().numpy()).tobytes())
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def fingerprint_file(path: str | Path) -> str:
    """Short sha256 of a file's bytes (feature extractor weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


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


def cached_feature_files(cache_root: str | Path, cache_name: str, extractor: str, layers: list[str]) -> list[Path]:
    """The files torch-fidelity 0.4 writes for one cached input (its naming, see torch_fidelity.utils)."""
    root = Path(cache_root)
    return [root / f"{cache_name}-{extractor}-features-{layer}.pt" for layer in layers]


def is_cached(cache_root: str | Path, cache_name: str, extractor: str, layers: list[str]) -> bool:
    """True when torch-fidelity will read this input's features from the cache instead of computing them."""
    return all(path.is_file() for path in cached_feature_files(cache_root, cache_name, extractor, layers))
