"""The prepared inputs of a study: real splits and synthetic sets as uint8 tensors, saved once, read by each job."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dtgan.data.labelled import LabelledImages
from dtgan.errors import DataError
from dtgan.storage import fetch_file, is_uri
from dtgan.utils.atomic import atomic_path

FORMAT_VERSION = 1


def synthetic_key(guidance: str, defect_source: str, product: str, defect: str) -> str:
    """Name of one ordered synthetic set, e.g. 'reference/A/B/scratch' = defects from A's references on B."""
    return f"{guidance}/{defect_source}/{product}/{defect}"


@dataclass(frozen=True)
class StudyData:
    """Everything a classifier job reads. Real classifier normals are ordered so that the first N of each
    product form the size-N training normals (sizes are nested); synthesis sources are not among them."""

    defects: tuple[str, ...]  # defects[0] == "normal"
    products: tuple[str, ...]
    train_normal: LabelledImages  # classifier-normal candidates (gan_train + non-source gan_holdout)
    train_defect: LabelledImages  # gan_train defects (after limit_defects_per_type)
    val: LabelledImages
    test: LabelledImages
    synthetic: dict[str, torch.Tensor] = field(default_factory=dict)  # synthetic_key -> (n, C, H, W) uint8
    meta: dict = field(default_factory=dict)  # provenance (JSON-able)

    def product_index(self, name: str) -> int:
        try:
            return self.products.index(name)
        except ValueError:
            raise DataError(
                f"product '{name}' not in the data set; products: {', '.join(self.products)}"
            ) from None

    def save(self, path: str | Path) -> Path:
        payload = {
            "format_version": FORMAT_VERSION,
            "defects": list(self.defects),
            "products": list(self.products),
            "train_normal": self.train_normal.to_dict(),
            "train_defect": self.train_defect.to_dict(),
            "val": self.val.to_dict(),
            "test": self.test.to_dict(),
            "synthetic": dict(self.synthetic),
            "meta": self.meta,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return Path(path)


def load_study_data(path: str | Path) -> StudyData:
    """Read a file written by :meth:`StudyData.save` (cached per path and modification time); a storage URI
    (``s3://...``: a classifier job on another node than the one that prepared it) is downloaded first."""
    if is_uri(path):
        path = fetch_file(
            str(path), Path(tempfile.gettempdir()) / "dtgan-study-data" / _uri_digest(str(path))
        )
    path = Path(path)
    if not path.is_file():
        raise DataError(f"study data '{path}' not found; run `dtgan downstream` to prepare it")
    return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)


def _uri_digest(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _load_cached(path: str, _mtime_ns: int) -> StudyData:
    d = torch.load(path, weights_only=True)
    if d.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"study data '{path}': format {d.get('format_version')} != {FORMAT_VERSION}; prepare it again"
        )
    return StudyData(
        defects=tuple(d["defects"]),
        products=tuple(d["products"]),
        train_normal=LabelledImages.from_dict(d["train_normal"]),
        train_defect=LabelledImages.from_dict(d["train_defect"]),
        val=LabelledImages.from_dict(d["val"]),
        test=LabelledImages.from_dict(d["test"]),
        synthetic=dict(d["synthetic"]),
        meta=d["meta"],
    )
