"""A split the user controls: a CSV of ``id,split`` rows, one per imported image.

The rule (stored in the file as its ``split_rule`` and shown by ``dtgan data describe``): every image of the import is
listed exactly once, by its row id (``<product>/<defect>/<path under the defect folder without extension>``, the
extension may be kept), with a split of ``parquet_io.SPLITS``. An id the import has no image for, an image the file
does not list, an id listed twice and an unknown split are each one line naming the file (and line) and the id.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

from dtgan.data.parquet_io import SPLITS
from dtgan.errors import DataError

HEADER = ("id", "split")


def _some(names: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _normalise(row_id: str, suffixes: Sequence[str]) -> str:
    """``a/normal/n0.png`` -> ``a/normal/n0``; backslashes and surrounding spaces are not ids' business."""
    row_id = row_id.strip()
    for suffix in suffixes:
        if row_id.lower().endswith(suffix):
            return row_id[: -len(suffix)]
    return row_id


def read_split_file(path: Path, suffixes: Sequence[str]) -> dict[str, tuple[str, int]]:
    """id -> (split, line number) from the CSV; one-line errors for a missing header, bad splits, repeats."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"--split-file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--split-file {path}: cannot read it as text ({exc})") from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None or tuple(h.strip().lower() for h in header[:2]) != HEADER:
        raise DataError(f"{path}: line 1 must be the header 'id,split' (then one id,split row per image)")
    out: dict[str, tuple[str, int]] = {}
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise DataError(f"{path}:{line}: expected 'id,split', got {','.join(row)!r}")
        row_id, split = _normalise(row[0], suffixes), row[1].strip()
        if split not in SPLITS:
            raise DataError(
                f"{path}:{line}: id {row_id!r} has split {split!r}; use one of {', '.join(SPLITS)}"
            )
        if row_id in out:
            raise DataError(f"{path}:{line}: id {row_id!r} is listed twice (also line {out[row_id][1]})")
        out[row_id] = (split, line)
    if not out:
        raise DataError(f"{path}: no id,split rows after the header")
    return out


def splits_from_file(path: Path, ids: Sequence[str], suffixes: Sequence[str], root: str) -> list[str]:
    """One split name per id, as the file lists it; unknown and missing ids are one-line errors."""
    listed = read_split_file(path, suffixes)
    known = set(ids)
    unknown = [(line, row_id) for row_id, (_, line) in listed.items() if row_id not in known]
    if unknown:
        line, first = min(unknown)
        raise DataError(
            f"{path}:{line}: id {first!r} is no image of {root} ({len(unknown)} unknown id(s) in the file); ids "
            f"are <product>/<defect>/<path without extension>, e.g. {sorted(known)[0]}"
        )
    missing = [row_id for row_id in ids if row_id not in listed]
    if missing:
        raise DataError(
            f"{path}: {len(missing)} image(s) of {root} have no row, e.g. {_some(missing)}; list every image "
            "as id,split"
        )
    return [listed[row_id][0] for row_id in ids]


def split_file_rule(path: Path) -> str:
    """The stored split rule: the file, its content hash and what it promises."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"split file {path} (sha256 {digest}...): each image's split as listed, every image listed once"
