"""Importer of MVTec AD under two protocols.

* ``paper`` (DT-GAN, Appendix E.4): the four texture categories' defects aggregated into scratch and spot as in
  Table 17, split as in Appendix A (val/test hold-out per cell, a subset of normal for GAN training).
* ``field`` (the later papers: DFMGAN, AAAI 2023; AnomalyDiffusion, AAAI 2024; SeaS, ICCV 2025): every MVTec
  defect type keeps its own label, and one third of each category x type's anomalies (with masks) trains the
  generator, the rest is the test set (``splits.FIELD_SPLIT_RULE`` states the counts exactly).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from dtgan.data import splits
from dtgan.data.importers import IMAGE_SUFFIXES, ImportItem, SplitOptions, build_rows, check_label
from dtgan.data.parquet_io import Rows, write_dataset
from dtgan.data.splits import FIELD_SPLIT_RULE, TEST_GOOD, TRAIN_GOOD, paper_split_rule
from dtgan.data.vocab import NORMAL
from dtgan.errors import DataError

DEFAULT_CATEGORIES = ("carpet", "leather", "tile", "wood")  # the paper's four (Table 17)
TEXTURE_CATEGORIES = ("carpet", "grid", "leather", "tile", "wood")  # all five MVTec AD textures
PROTOCOLS = ("paper", "field")
MVTEC_GOOD = "good"


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


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def collect_mvtec_field(root: Path, categories: Sequence[str]) -> tuple[list[ImportItem], list[str]]:
    """The field protocol's items and, per item, its split cell: ``train_good``, ``test_good`` or the MVTec
    defect type (every ``test/<type>/`` folder but ``good``, each image with ``ground_truth/<type>/<stem>_mask.png``).
    """
    items: list[ImportItem] = []
    cells: list[str] = []
    for category in categories:
        base = root / category
        check_label(category, base)
        if not (base / "train" / MVTEC_GOOD).is_dir() or not (base / "test").is_dir():
            raise DataError(
                f"{base}: expected the MVTec AD layout ROOT/<category>/train/good, test/<defect type>, "
                f"ground_truth/<defect type>"
            )
        for sub, cell in (("train", TRAIN_GOOD), ("test", TEST_GOOD)):
            folder = base / sub / MVTEC_GOOD
            files = _image_files(folder) if folder.is_dir() else []
            items += [
                ImportItem(f, category, NORMAL, row_id=f"{category}/{NORMAL}/{sub}_{f.stem}") for f in files
            ]
            cells += [cell] * len(files)
        types = sorted(d.name for d in (base / "test").iterdir() if d.is_dir() and d.name != MVTEC_GOOD)
        if not types:
            raise DataError(f"{base / 'test'}: no defect type folders besides good/")
        for mvtec_type in types:
            folder = base / "test" / mvtec_type
            if mvtec_type == NORMAL:
                raise DataError(f"{folder}: a defect type may not be called {NORMAL!r} (the anchor domain)")
            check_label(mvtec_type, folder)
            images = _image_files(folder)
            if not images:
                raise DataError(f"{folder}: empty folder; no {'/'.join(IMAGE_SUFFIXES)} images")
            for image in images:
                mask = base / "ground_truth" / mvtec_type / f"{image.stem}_mask.png"
                if not mask.is_file():
                    raise DataError(f"{mask}: missing; the field protocol needs a mask for every anomaly")
                items.append(
                    ImportItem(
                        image, category, mvtec_type, mask, row_id=f"{category}/{mvtec_type}/{image.stem}"
                    )
                )
                cells.append(mvtec_type)
    return items, cells


def field_splits(items: Sequence[ImportItem], cells: Sequence[str], options: SplitOptions) -> list[str]:
    """One split name per item under the field protocol (``splits.FIELD_SPLIT_RULE``), seeded per cell."""
    return splits.field_splits([item.product for item in items], cells, options)


def import_mvtec(
    root: str,
    out_path: str,
    categories: Sequence[str] | None = None,
    size: int = 128,
    options: SplitOptions = SplitOptions(),
    protocol: str = "paper",
) -> Rows:
    """Import MVTec AD categories into ``out_path``; nothing is written if any input is bad.

    ``protocol`` ``paper`` (default categories: the paper's four) or ``field`` (default: the five textures).
    """
    if protocol not in PROTOCOLS:
        raise DataError(f"--protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    info: dict = {"generator": "dtgan data import mvtec", "protocol": protocol, "root": str(root)}
    if protocol == "paper":
        categories = list(categories or DEFAULT_CATEGORIES)
        items = collect_mvtec(Path(root), categories)
        rows, vocab = build_rows(items, size, options, root)
        info["split_rule"] = "Table 17 labels; " + paper_split_rule(options)
    else:
        categories = list(categories or TEXTURE_CATEGORIES)
        items, cells = collect_mvtec_field(Path(root), categories)
        rows, vocab = build_rows(items, size, options, root, splits=field_splits(items, cells, options))
        info["split_rule"] = FIELD_SPLIT_RULE
        info["gan_normal_per_product"] = options.gan_normal_per_product
    info.update({"categories": categories, "size": size, "seed": options.seed})
    write_dataset(out_path, rows, vocab, info)
    return rows
