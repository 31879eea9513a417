"""The FID/KID feature arrays an evaluation writes beside its JSON, for the report's bootstrap CIs.

``<out>/features/gen_{guidance}_{scope}.npy`` and ``<out>/features/real_{scope}.npy`` (names from ``dtgan.keys``,
``generated_features_file``, ``real_features_file``): float32 (N, D), the
rows FID/KID were computed on, scope ``all`` or a product (docs/interfaces.md "Report inputs"). Size: N x D x 4
bytes, e.g. Inception (D = 2048) on the paper's 24,000 synthetic images per guidance ~ 200 MB per guidance for
``all``, as much again over the per-product files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dtgan.utils.atomic import atomic_path

FEATURES_DTYPE = np.float32


class FeatureWriter:
    """A ``FeatureSink`` that saves each feature set as ``<folder>/<name>`` (float32 ``.npy``, written atomically)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.written: dict[str, list[int]] = {}  # file name -> [N, D]

    def __call__(self, name: str, features: torch.Tensor) -> None:
        array = features.detach().cpu().numpy().astype(FEATURES_DTYPE, copy=False)
        if array.ndim != 2 or not name.endswith(".npy"):
            raise ValueError(f"features {name}: expected a .npy name and (N, D) rows, got {array.shape}")
        with atomic_path(self.folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array)  # a file object: np.save would append ".npy" to the temporary name
        self.written[name] = list(array.shape)

    def summary(self) -> dict:
        """What went where, for the evaluation JSON."""
        return {"dir": str(self.folder), "dtype": np.dtype(FEATURES_DTYPE).name, "files": dict(self.written)}

    def paths(self) -> list[Path]:
        return [self.folder / name for name in self.written]
