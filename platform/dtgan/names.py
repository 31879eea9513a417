"""Names that become file names or metric keys: reserved names, names that collide once made safe, and run names
that would leave their output folder. Light (no torch), so the importers and the exporters share these checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from dtgan.errors import DataError
from dtgan.keys import SCOPE_ALL, safe_name

# Names a product may not take: they stand for all products pooled (metric keys, feature files, report cells).
RESERVED_PRODUCT_NAMES = frozenset({SCOPE_ALL})


def check_product_names(products: Iterable[str], where: str) -> None:
    """Refuse a product named like an aggregate (``all``) and two products (or defects) whose safe names
    coincide (``a.b`` and ``a-b``; ``Screw`` and ``screw`` on a case-insensitive disk): one line naming both."""
    products = list(products)
    for name in products:
        if safe_name(name).lower() in RESERVED_PRODUCT_NAMES:
            raise DataError(
                f"{where}: product {name!r} is named like the aggregate {SCOPE_ALL!r} of the reports; rename its "
                "folder and import the data again"
            )
    check_distinct_safe_names(products, "product", where)


def check_distinct_safe_names(names: Iterable[str], what: str, where: str) -> None:
    """Two names that map to one file or key name (after :func:`dtgan.keys.safe_name`, ignoring case)."""
    seen: dict[str, str] = {}
    for name in names:
        key = safe_name(name).lower()
        if key in seen and seen[key] != name:
            raise DataError(
                f"{where}: {what}s {seen[key]!r} and {name!r} would share the file and metric name "
                f"{safe_name(name)!r}; rename one of their folders and import the data again"
            )
        seen.setdefault(key, name)


def injective_file_stems(ids: Iterable[str]) -> list[str]:
    """One file stem per id, all distinct even ignoring case: ``safe_name(id)``, and ``~2``, ``~3``, ... after
    the second, third, ... id whose safe name was already taken (in the order given, so the mapping is
    reproducible from the ids alone)."""
    taken: set[str] = set()
    stems = []
    for image_id in ids:
        base = safe_name(image_id)
        stem, n = base, 1
        while stem.lower() in taken:
            n += 1
            stem = f"{base}~{n}"
        taken.add(stem.lower())
        stems.append(stem)
    return stems


def check_run_name(name: str) -> str:
    """A run name is one folder inside its out_dir: no ``..``, no absolute path, no separator."""
    parts = {PurePosixPath(name), PureWindowsPath(name)}
    if (
        not name
        or name in (".", "..")
        or any(p.is_absolute() or p.anchor or len(p.parts) != 1 for p in parts)
        or any(part == ".." for p in parts for part in PurePath(p).parts)
    ):
        raise ValueError(
            f"{name!r} is not a folder name: a run name is one folder inside train.out_dir "
            "(no '/', '\\', '..' or absolute path); name the folder with --run-dir instead"
        )
    return name
