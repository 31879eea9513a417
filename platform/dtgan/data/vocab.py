"""Label vocabularies: products (background domains) and defects (foreground domains, ``normal`` first)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from dtgan.errors import DataError

NORMAL = "normal"
NORMAL_INDEX = 0  # the anchor foreground domain is always index 0
METADATA_KEY = b"dtgan.vocab"  # Parquet schema metadata key holding the vocabulary as JSON


@dataclass(frozen=True)
class Vocab:
    """Products and defects of a data set; indices never depend on which rows a shard holds.

    ``defects[0] == "normal"``; the other defects and the products are sorted.
    """

    products: tuple[str, ...]
    defects: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.defects or self.defects[0] != NORMAL:
            raise DataError(f"vocabulary defects must start with {NORMAL!r}, got {list(self.defects)}")
        if list(self.defects[1:]) != sorted(set(self.defects[1:]) - {NORMAL}):
            raise DataError(
                f"vocabulary defects after {NORMAL!r} must be unique and sorted: {list(self.defects)}"
            )
        if not self.products or list(self.products) != sorted(set(self.products)):
            raise DataError(
                f"vocabulary products must be non-empty, unique and sorted: {list(self.products)}"
            )

    @classmethod
    def from_labels(cls, products: Iterable[str], defects: Iterable[str]) -> Vocab:
        """Build the canonical vocabulary from label sets in any order (``normal`` need not be listed)."""
        return cls(tuple(sorted(set(products))), (NORMAL, *sorted(set(defects) - {NORMAL})))

    @property
    def num_products(self) -> int:
        return len(self.products)

    @property
    def num_domains(self) -> int:
        """Number of foreground domains K (``normal`` included)."""
        return len(self.defects)

    def defect_index(self, name: str) -> int:
        try:
            return self.defects.index(name)
        except ValueError:
            raise DataError(f"unknown defect {name!r}; the vocabulary has {list(self.defects)}") from None

    def product_index(self, name: str) -> int:
        try:
            return self.products.index(name)
        except ValueError:
            raise DataError(f"unknown product {name!r}; the vocabulary has {list(self.products)}") from None

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON-able form stored in Parquet metadata and checkpoints."""
        return {"products": list(self.products), "defects": list(self.defects)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        try:
            return cls(tuple(data["products"]), tuple(data["defects"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"vocabulary needs lists 'products' and 'defects', got {data!r}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_schema_metadata(cls, metadata: dict[bytes, bytes] | None, where: str) -> Vocab:
        """Read the vocabulary from Parquet schema metadata; ``where`` names the file in errors."""
        if not metadata or METADATA_KEY not in metadata:
            raise DataError(f"{where}: no label vocabulary in the Parquet metadata; write it with dtgan data")
        try:
            return cls.from_dict(json.loads(metadata[METADATA_KEY]))
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: the vocabulary in the Parquet metadata is not JSON ({exc})") from exc
