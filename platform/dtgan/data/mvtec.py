"""Importer of MVTec AD texture categories with the paper's Table 17 aggregation into scratch and spot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from dtgan.data.importers import IMAGE_SUFFIXES, ImportItem, SplitOptions, build_rows
from dtgan.data.parquet_io import Rows, write_dataset
from dtgan.data.vocab import NORMAL
from dtgan.errors import DataError

DEFAULT_CATEGORIES = ("carpet", "leather", "tile", "wood")


def table17() -> dict[str, dict[str, dict[str, list[str]]]]:
    """category -> our defect -> MVTec defect type -> image numbers ("000" or ranges "000-016")."""
    text = resources.files("dtgan.data").joinpath("mvtec_table17.json").read_text()
    return {key: value for key, value in json.loads(text).items() if not key.startswith("_")}


def expand_numbers(specs: list[str]) -> list[str]:
    """["000-002", "007"] -> ["000", "001", "002", "007"]."""
    numbers: list[str] = []
    for spec in specs:
        low, _, high = spec.partition("-")
        numbers += [f"{n:03d}" for n in range(int(low), int(high or low) + 1)]
    return numbers


def collect_mvtec(root: Path, categories: Sequence[str]) -> list[ImportItem]:
    """Normal images (train/good and test/good) and Table 17's defects with their ground-truth masks."""
    mapping = table17()
    items: list[ImportItem] = []
    for category in categories:
        if category not in mapping:
            raise DataError(
                f"--categories: {category!r} is not in Table 17; choose from {', '.join(mapping)}"
            )
        base = root / category
        if not base.is_dir():
            raise DataError(
                f"{base}: no such folder; expected the MVTec AD layout ROOT/<category>/train/good"
            )
        normals = [
            f
            for sub in ("train/good", "test/good")
            if (base / sub).is_dir()
            for f in sorted((base / sub).iterdir())
            if f.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not normals:
            raise DataError(f"{base}: product without normal images in train/good or test/good")
        items += [
            ImportItem(f, category, NORMAL, row_id=f"{category}/{NORMAL}/{f.parent.parent.name}_{f.stem}")
            for f in normals
        ]
        for defect, types in mapping[category].items():
            for mvtec_type, specs in types.items():
                for number in expand_numbers(specs):
                    image = base / "test" / mvtec_type / f"{number}.png"
                    mask = base / "ground_truth" / mvtec_type / f"{number}_mask.png"
                    for needed in (image, mask):
                        if not needed.is_file():
                            raise DataError(f"{needed}: missing; Table 17 lists it for {category}/{defect}")
                    # Table 17 lists leather glue 009 under both scratch and spot; the id keeps both rows apart.
                    items.append(
                        ImportItem(
                            image, category, defect, mask, row_id=f"{category}/{defect}/{mvtec_type}_{number}"
                        )
                    )
    return items


def import_mvtec(
    root: str,
    out_path: str,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    size: int = 128,
    options: SplitOptions = SplitOptions(),
) -> Rows:
    """Import MVTec AD categories into ``out_path``; nothing is written if any input is bad."""
    items = collect_mvtec(Path(root), categories)
    rows, vocab = build_rows(items, size, options, root)
    write_dataset(
        out_path,
        rows,
        vocab,
        {
            "generator": "dtgan data import mvtec",
            "root": str(root),
            "categories": list(categories),
            "size": size,
            "seed": options.seed,
        },
    )
    return rows
