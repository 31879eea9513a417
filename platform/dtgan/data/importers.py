"""Importers of real data into the Parquet format: a folder tree ROOT/<product>/<defect>/*.png|jpg|bmp|tif."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dtgan.data.codec import (
    CONVERTED_MODES,
    encode_png_gray,
    read_gray_file_and_mode,
    resize_gray,
    resize_mask,
)
from dtgan.data.masks import find_mask, is_mask_file, read_mask_file
from dtgan.data.parquet_io import Rows, write_dataset
from dtgan.data.split_file import split_file_rule, splits_from_file
from dtgan.data.splits import (
    FIELD_SPLIT_RULE,
    TRAIN_GOOD,
    SplitOptions,
    field_splits,
    paper_split_rule,
    plan_cell,
)
from dtgan.data.vocab import NORMAL, Vocab
from dtgan.errors import DataError
from dtgan.names import check_distinct_safe_names, check_product_names

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_READ_THREADS = 2


@dataclass(frozen=True)
class ImportItem:
    """One image to import: its file, labels, optional mask file and row id (default product/defect/stem)."""

    path: Path
    product: str
    defect: str
    mask_path: Path | None = None
    row_id: str | None = None

    @property
    def id(self) -> str:
        return self.row_id or f"{self.product}/{self.defect}/{self.path.stem}"


def check_label(name: str, where: Path) -> str:
    if not LABEL_PATTERN.match(name):
        raise DataError(f"{where}: label {name!r} must be letters, digits, '_', '.', '-'; rename the folder")
    return name


def check_out_path(out_path: str) -> None:
    """A one-line error before any image is read when ``--out`` cannot take a Parquet file."""
    if "://" not in out_path and Path(out_path).is_dir():
        raise DataError(
            f"--out {out_path}: is a folder; name the .parquet file to write, e.g. {Path(out_path) / 'data.parquet'}"
        )


@dataclass
class _Walk:
    """What a walk of the defect folders found besides the images: for the counted warnings."""

    not_images: int = 0
    mask_files: list[Path] = field(
        default_factory=list
    )  # <stem>_mask.* files beside images: masks, not images
    dangling: list[Path] = field(default_factory=list)
    nested: Counter = field(default_factory=Counter)  # sub-folder of a defect folder -> images imported
    loops: list[Path] = field(default_factory=list)  # symlinked folders reached a second time
    crossing: list[Path] = field(default_factory=list)  # symlinks into other folders of ROOT, or relabelling
    empty: list[Path] = field(default_factory=list)  # defect folders without images: skipped classes


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


@dataclass(frozen=True)
class _Home:
    """Where a defect folder's walk may lead: links into other folders of ROOT would relabel their images."""

    root: Path  # ROOT, resolved
    folder: Path  # the defect folder, resolved


def _images_under(folder: Path, walk: _Walk, seen: set[Path], home: _Home) -> list[Path]:
    """The image files in ``folder`` and (recursively) its sub-folders, sorted; hidden entries are skipped, a
    folder reached twice through symlinks is read once (a loop), and a symlink that leads into another folder of
    ROOT is skipped (it would import that folder's images under this folder's label)."""
    resolved = folder.resolve()
    if resolved in seen:
        walk.loops.append(folder)
        return []
    seen.add(resolved)
    found: list[Path] = []
    for entry in sorted(folder.iterdir()):
        if _hidden(entry):
            continue
        if entry.is_symlink() and not entry.exists():
            walk.dangling.append(entry)
            continue
        if entry.is_symlink():
            target = entry.resolve()
            if target.is_relative_to(home.root) and not target.is_relative_to(home.folder):
                walk.crossing.append(entry)
                continue
        if entry.is_dir():
            found += _images_under(entry, walk, seen, home)
        elif entry.suffix.lower() in IMAGE_SUFFIXES and is_mask_file(entry):
            walk.mask_files.append(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            found.append(entry)
        else:
            walk.not_images += 1
    return found


def _warn_about(root: Path, walk: _Walk) -> None:
    if walk.not_images:
        log.warning(
            "%s: ignored %d file(s) that are not %s images", root, walk.not_images, "/".join(IMAGE_SUFFIXES)
        )
    if walk.dangling:
        log.warning(
            "%s: skipped %d dangling symlink(s) (their targets do not exist): %s",
            root,
            len(walk.dangling),
            _some(p.relative_to(root) for p in sorted(walk.dangling)),
        )
    if walk.loops:
        log.warning(
            "%s: skipped %d symlinked folder(s) reached a second time (a symlink loop): %s",
            root,
            len(walk.loops),
            _some(p.relative_to(root) for p in walk.loops),
        )
    if walk.crossing:
        log.warning(
            "%s: skipped %d symlink(s) that lead into another folder of ROOT or to an image imported under another "
            "label (they would import its images under this folder's label): %s",
            root,
            len(walk.crossing),
            _some(p.relative_to(root) for p in walk.crossing),
        )
    if walk.empty:
        log.warning(
            "%s: skipped %d empty defect folder(s) (no %s images; no class is made for them): %s",
            root,
            len(walk.empty),
            "/".join(IMAGE_SUFFIXES),
            _some(p.relative_to(root) for p in walk.empty),
        )
    if walk.nested:
        log.warning(
            "%s: imported %d image(s) from %d sub-folder(s) of defect folders, labelled by the defect folder "
            "above them: %s",
            root,
            sum(walk.nested.values()),
            len(walk.nested),
            _some(f"{folder.relative_to(root)} ({n})" for folder, n in sorted(walk.nested.items())),
        )


def _some(names: Iterable, shown: int = 3) -> str:
    names = [str(n) for n in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def warn_normal_only_products(products: Sequence[str], defects: Sequence[str], where: str) -> list[str]:
    """Warn once about the products whose rows (parallel ``products``/``defects`` labels) are all ``normal``:
    they can receive other products' defects but contribute none. Returns those products."""
    with_defects = {p for p, d in zip(products, defects) if d != NORMAL}
    normal_only = sorted(set(products) - with_defects)
    if normal_only:
        log.warning(
            "%s: %d product(s) with only %s images (%s): they can receive other products' defects but "
            "contribute none; add <product>/<defect>/ images to learn their defects",
            where,
            len(normal_only),
            NORMAL,
            ", ".join(normal_only),
        )
    return normal_only


def collect_folders(
    root: Path, defects: Sequence[str] | None = None, mask_root: Path | None = None
) -> list[ImportItem]:
    """Items of ROOT/<product>/<defect>/[sub-folders/]<image>; ``defects`` restricts the defect folder names.

    Images in sub-folders of a defect folder are imported with the defect folder's label (their row id keeps
    the sub-folder path); dangling symlinks and non-image files are skipped. Each of these is one counted
    warning that names the folders or files. Masks (:mod:`dtgan.data.masks`) come from ``mask_root`` (a tree
    mirroring ROOT) or from ``<stem>_mask.<ext>`` beside the image; when any mask is looked for or found, the
    defect images without one are one counted warning (Crop&Paste cannot paste them).
    """
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if mask_root is not None and not mask_root.is_dir():
        raise DataError(f"--masks {mask_root}: no such folder; it mirrors ROOT's <product>/<defect>/ tree")
    inside = mask_root.resolve() if mask_root is not None else None
    products = sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p) and p.resolve() != inside)
    if not products:
        raise DataError(f"{root}: empty folder; expected ROOT/<product>/<defect>/*.png")
    items: list[ImportItem] = []
    walk = _Walk(dangling=[e for e in sorted(root.iterdir()) if e.is_symlink() and not e.exists()])
    root_resolved = root.resolve()
    seen: set[Path] = set()  # resolved folders walked: a folder reached twice is a loop
    # resolved image file -> the (product, defect) it was imported as: a second label is a relabelling link
    label_of: dict[Path, tuple[str, str]] = {}
    for product_dir in products:
        if _leads_elsewhere_in_root(product_dir, root_resolved):
            walk.crossing.append(product_dir)
            continue
        defect_dirs = sorted(d for d in product_dir.iterdir() if d.is_dir() and not _hidden(d))
        walk.crossing += [d for d in defect_dirs if _leads_elsewhere_in_root(d, root_resolved)]
        defect_dirs = [d for d in defect_dirs if not _leads_elsewhere_in_root(d, root_resolved)]
        walk.dangling += [e for e in sorted(product_dir.iterdir()) if e.is_symlink() and not e.exists()]
        if not defect_dirs:
            raise DataError(f"{product_dir}: empty folder; expected <defect>/ sub-folders such as normal/")
        if NORMAL not in [d.name for d in defect_dirs]:
            raise DataError(
                f"{product_dir}: product without a {NORMAL}/ folder; every product needs normal images"
            )
        for defect_dir in defect_dirs:
            if defects is not None and defect_dir.name not in (NORMAL, *defects):
                raise DataError(
                    f"{defect_dir}: unknown defect label {defect_dir.name!r}; "
                    f"allowed: {', '.join((NORMAL, *defects))}"
                )
            product = check_label(product_dir.name, product_dir)
            defect = check_label(defect_dir.name, defect_dir)
            home = _Home(root_resolved, defect_dir.resolve())
            images = _images_under(defect_dir, walk, seen, home)
            if not images and defect != NORMAL:
                walk.empty.append(defect_dir)
                continue
            if not images:
                raise DataError(f"{defect_dir}: empty folder; no {'/'.join(IMAGE_SUFFIXES)} images")
            for image in images:
                label = label_of.setdefault(image.resolve(), (product, defect))
                if label != (product, defect):
                    walk.crossing.append(image)
                    continue
                relative = image.relative_to(defect_dir)
                if relative.parent != Path("."):
                    walk.nested[defect_dir / relative.parts[0]] += 1
                row_id = f"{product}/{defect}/{relative.with_suffix('').as_posix()}"
                mask = find_mask(image, image.relative_to(root), mask_root, IMAGE_SUFFIXES)
                items.append(ImportItem(image, product, defect, mask_path=mask, row_id=row_id))
    _warn_about(root, walk)
    _warn_about_masks(root, items, mask_root)
    _warn_about_unused_masks(root, items, mask_root, walk.mask_files)
    warn_normal_only_products([i.product for i in items], [i.defect for i in items], str(root))
    return items


def _leads_elsewhere_in_root(folder: Path, root_resolved: Path) -> bool:
    """A symlinked product or defect folder whose target is another folder of ROOT (its images have a label there)."""
    return folder.is_symlink() and folder.resolve().is_relative_to(root_resolved)


def check_names(products: Sequence[str], defects: Sequence[str], where: str) -> None:
    """Refuse labels that metric keys, feature files and exports could not tell apart (``dtgan.names``: two
    products or defects with one safe name, case ignored; a product named like the reports' aggregate)."""
    check_product_names(sorted(set(products)), where)
    check_distinct_safe_names(sorted(set(defects)), "defect", where)


def _warn_about_unused_masks(
    root: Path, items: list[ImportItem], mask_root: Path | None, beside: list[Path]
) -> list[Path]:
    """One counted warning for mask files that are no image's mask (a misspelt folder or stem). Returns them."""
    candidates = list(beside)
    if mask_root is not None:
        candidates += [
            f
            for f in mask_root.rglob("*")
            if f.suffix.lower() in IMAGE_SUFFIXES and not _hidden(f) and f.is_file()
        ]
    used = {i.mask_path.resolve() for i in items if i.mask_path is not None}
    unused = sorted({f for f in candidates if f.resolve() not in used})
    if unused:
        log.warning(
            "%s: %d mask file(s) are no image's mask (no image with that product/defect/stem): %s",
            root,
            len(unused),
            _some(unused),
        )
    return unused


def _warn_about_masks(root: Path, items: list[ImportItem], mask_root: Path | None) -> int:
    """One counted warning for the defect images without a mask, when masks were asked for or some were found.
    Returns that count."""
    if mask_root is None and not any(i.mask_path is not None for i in items):
        return 0
    without = [i for i in items if i.defect != NORMAL and i.mask_path is None]
    if without:
        beside = "beside the images as <stem>_mask.png"
        where = f"in {mask_root}/<product>/<defect>/ as <stem>.png or <stem>_mask.png, and {beside}"
        log.warning(
            "%s: %d of %d defect image(s) have no mask (looked %s): %s; "
            "Crop&Paste and every mask-based metric leave them out",
            root,
            len(without),
            sum(i.defect != NORMAL for i in items),
            where if mask_root is not None else beside,
            _some(i.id for i in without),
        )
    return len(without)


def build_rows(
    items: list[ImportItem],
    size: int,
    options: SplitOptions,
    where: str,
    splits: Sequence[str] | None = None,
) -> tuple[Rows, Vocab]:
    """Decode, resize and split the items; every error names the file or the cell.

    ``splits`` (one split name per item) replaces the Appendix A assignment, e.g. the MVTec field protocol's.
    """
    if splits is not None and len(splits) != len(items):
        raise ValueError(f"{len(splits)} split names for {len(items)} items")
    check_names([i.product for i in items], [i.defect for i in items], where)
    split_of = dict(enumerate(splits)) if splits is not None else _appendix_a_splits(items, options)
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        decoded = list(pool.map(lambda item: _read(item, size), items))
    resized = sum(d.resized for d in decoded)
    if resized:
        log.warning("%s: resized %d of %d images to %dx%d px", where, resized, len(items), size, size)
    other_size = [item.mask_path for item, d in zip(items, decoded) if d.mask_other_size]
    if other_size:
        log.warning(
            "%s: %d mask(s) differ in size from their image and were resized with it to %dx%d px: %s",
            where,
            len(other_size),
            size,
            size,
            _some(other_size),
        )
    converted = Counter(d.mode for d in decoded if d.mode in CONVERTED_MODES)
    if converted:
        modes = ", ".join(f"{mode} x{n}" for mode, n in sorted(converted.items()))
        log.warning(
            "%s: converted %d of %d images to gray from other modes (%s; alpha dropped)",
            where,
            sum(converted.values()),
            len(items),
            modes,
        )
    rows = Rows.empty()
    for number, (item, d) in enumerate(zip(items, decoded)):
        rows.append(
            id=item.id,
            product=item.product,
            defect=item.defect,
            split=split_of[number],
            source="real",
            image=d.image,
            mask=d.mask,
        )
    return rows, Vocab.from_labels([i.product for i in items], [i.defect for i in items])


def _appendix_a_splits(items: list[ImportItem], options: SplitOptions) -> dict[int, str]:
    """Item number -> split: per (product, defect) cell, ``plan_cell``'s counts over a seeded shuffle."""
    cells: dict[tuple[str, str], list[int]] = {}
    for number, item in enumerate(items):
        cells.setdefault((item.product, item.defect), []).append(number)
    rng = np.random.default_rng(options.seed)
    split_of: dict[int, str] = {}
    for (product, defect), numbers in sorted(cells.items()):
        plan = plan_cell(
            product, defect, len(numbers), options.holdout_per_cell, options.gan_normal_per_product
        )
        order = rng.permutation(len(numbers))
        for label, position in zip(plan.labels(), order):
            split_of[numbers[position]] = label
    return split_of


@dataclass(frozen=True)
class _Decoded:
    image: bytes  # PNG at the import size
    mask: bytes | None  # PNG 0/255 at the import size
    resized: bool  # the image had another size
    mode: str  # the image file's Pillow mode
    mask_other_size: bool  # the mask's size differs from its image's


def _read(item: ImportItem, size: int) -> _Decoded:
    image, mode = read_gray_file_and_mode(str(item.path))
    mask, other_size = None, False
    if item.mask_path is not None:
        array = read_mask_file(item.mask_path)
        other_size = array.shape != image.shape
        if other_size and abs(array.shape[0] * image.shape[1] - image.shape[0] * array.shape[1]) > 0.02 * (
            array.shape[1] * image.shape[1]
        ):
            raise DataError(
                f"{item.mask_path}: mask is {array.shape[1]}x{array.shape[0]} px, its image {item.path.name} "
                f"{image.shape[1]}x{image.shape[0]} px (another aspect ratio); is it the mask of another image?"
            )
        mask = encode_png_gray(resize_mask(array, size))
    return _Decoded(
        encode_png_gray(resize_gray(image, size)), mask, image.shape != (size, size), mode, other_size
    )


FOLDER_PROTOCOLS = ("paper", "field")


def import_folders(
    root: str,
    out_path: str,
    size: int = 128,
    options: SplitOptions = SplitOptions(),
    defects: Sequence[str] | None = None,
    masks: str | None = None,
    protocol: str = "paper",
    split_file: str | None = None,
) -> Rows:
    """Import ROOT/<product>/<defect>/* (and their masks: ``masks`` root or ``<stem>_mask.png`` beside them) into
    ``out_path``; nothing is written if any input is bad.

    The split: ``paper`` (Appendix A, per cell), ``field`` (the field's one-third rule: each defect folder a defect
    type, normal/ the training normals) or, with ``split_file``, the user's own CSV (``dtgan.data.split_file``).
    The rule is stored in the file's notes as ``split_rule``.
    """
    if protocol not in FOLDER_PROTOCOLS:
        raise DataError(f"--protocol {protocol!r}: choose one of {', '.join(FOLDER_PROTOCOLS)}")
    if split_file is not None and protocol != "paper":
        raise DataError("--split-file: the file is the split; leave --protocol out")
    check_out_path(out_path)
    mask_root = Path(masks) if masks is not None else None
    items = collect_folders(Path(root), defects, mask_root)
    _check_unique_ids(items, root)
    check_names([i.product for i in items], [i.defect for i in items], root)
    info: dict = {"generator": "dtgan data import folders", "root": str(root)}
    if split_file is not None:
        splits = splits_from_file(Path(split_file), [i.id for i in items], IMAGE_SUFFIXES, root)
        info.update(protocol="split-file", split_rule=split_file_rule(Path(split_file)))
    elif protocol == "field":
        cells = [TRAIN_GOOD if i.defect == NORMAL else i.defect for i in items]
        splits = field_splits([i.product for i in items], cells, options)
        info.update(
            protocol="field",
            split_rule=FIELD_SPLIT_RULE + "; a folder tree's normal/ images are its train/good",
            gan_normal_per_product=options.gan_normal_per_product,
        )
    else:
        splits = None
        info.update(protocol="paper", split_rule=paper_split_rule(options))
    rows, vocab = build_rows(items, size, options, root, splits=splits)
    info.update(size=size, seed=options.seed)
    if mask_root is not None:
        info["masks"] = str(mask_root)
    write_dataset(out_path, rows, vocab, info)
    return rows


def _check_unique_ids(items: list[ImportItem], root: str) -> None:
    seen: dict[str, Path] = {}
    for item in items:
        if item.id in seen:
            raise DataError(f"{item.path}: same name as {seen[item.id].name} (other extension); rename one")
        seen[item.id] = item.path
