"""Counts of a data set per split, product and defect, as plain-text tables."""

from __future__ import annotations

from collections import Counter

from dtgan.data.parquet_io import SPLITS, read_info, read_table
from dtgan.data.supports import supports
from dtgan.data.vocab import Vocab


def count_cells(path: str) -> tuple[Vocab, Counter]:
    """(vocabulary, Counter of (split, product, defect) -> images)."""
    table, vocab = read_table(path, columns=["split", "product", "defect"])
    keys = zip(table["split"].to_pylist(), table["product"].to_pylist(), table["defect"].to_pylist())
    return vocab, Counter(keys)


def describe(path: str) -> str:
    """The file's notes, what it supports (:func:`dtgan.data.supports.supports`) and a products x defects table per
    split, with totals."""
    vocab, counts = count_cells(path)
    info = read_info(path)
    width = max(len(name) for name in (*vocab.products, "product", "total")) + 2
    column = max(len(name) for name in (*vocab.defects, "total")) + 2
    lines = [
        f"{path}: {sum(counts.values())} images, {vocab.num_products} products, "
        f"{vocab.num_domains} defect domains (index 0 = {vocab.defects[0]})"
    ]
    for key in (
        "generator",
        "protocol",
        "split_rule",
        "categories",
        "seed",
        "size",
        "scale",
        "defect_boldness",
        "products",
        "defects",
        "unseen_cells",
        "masks",
    ):
        if key in info:
            lines.append(f"  {key}: {info[key]}")
    lines += ["", *supports(path)]
    for split in SPLITS:
        total = sum(n for (s, _, _), n in counts.items() if s == split)
        lines += [
            "",
            f"[{split}] {total} images",
            "product".ljust(width) + "".join(d.rjust(column) for d in (*vocab.defects, "total")),
        ]
        for product in (*vocab.products, "total"):
            cells = [
                sum(
                    n
                    for (s, p, d), n in counts.items()
                    if s == split and product in (p, "total") and d == defect
                )
                for defect in vocab.defects
            ]
            lines.append(product.ljust(width) + "".join(str(n).rjust(column) for n in (*cells, sum(cells))))
    return "\n".join(lines)
