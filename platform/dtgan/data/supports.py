"""What a data set supports: which studies, metrics and arms it can feed, read from its rows before any run.

* masks on defect images -> Crop&Paste (``dtgan evaluate-crop-paste``, the downstream arm ``crop_paste``);
* clean backgrounds on defect images -> defect removal (``eval/removal_psnr``);
* product x defect cells without ``gan_train`` images but with val/test images -> transfer is the only source of
  those defects (the GAN never saw them; the held-out images measure it);
* ``val`` and ``test`` rows -> the classifier study (``dtgan downstream``); defect types with ``gan_train`` and
  ``test`` rows, two or more per product -> the field's defect-type classification protocol.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow.compute as pc

from dtgan.data.parquet_io import read_table
from dtgan.data.vocab import NORMAL


@dataclass
class Support:
    """Counts behind the lines of :func:`supports`."""

    defect_images: Counter = field(default_factory=Counter)  # split -> defect images
    with_mask: Counter = field(default_factory=Counter)  # split -> defect images with a mask
    with_clean: Counter = field(default_factory=Counter)  # split -> defect images with a clean background
    cells: Counter = field(default_factory=Counter)  # (split, product, defect) -> images
    products: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()

    def unseen_cells(self) -> list[tuple[str, str]]:
        """(product, defect) with images outside gan_train but none in it."""
        seen = {(p, d) for (s, p, d) in self.cells if s == "gan_train"}
        held = {(p, d) for (s, p, d) in self.cells if s != "gan_train"}
        return sorted(c for c in held - seen if c[1] != NORMAL)

    def absent_cells(self) -> list[tuple[str, str]]:
        """(product, defect) with no image at all: only transfer can make these."""
        present = {(p, d) for (_, p, d) in self.cells}
        return [(p, d) for p in self.products for d in self.defects if d != NORMAL and (p, d) not in present]

    def field_cells(self) -> list[tuple[str, str]]:
        """(product, defect) with gan_train and test defect images: the field's classification protocol's cells."""
        return sorted(
            (p, d)
            for (s, p, d) in self.cells
            if s == "test" and d != NORMAL and self.cells.get(("gan_train", p, d), 0) > 0
        )


def count_support(path: str) -> Support:
    table, vocab = read_table(path, columns=["split", "product", "defect", "mask", "clean"])
    splits, products, defects = (table[c].to_pylist() for c in ("split", "product", "defect"))
    has_mask = pc.is_valid(table["mask"]).to_pylist()
    has_clean = pc.is_valid(table["clean"]).to_pylist()
    out = Support(products=tuple(vocab.products), defects=tuple(vocab.defects))
    for split, product, defect, mask, clean in zip(splits, products, defects, has_mask, has_clean):
        out.cells[(split, product, defect)] += 1
        if defect != NORMAL:
            out.defect_images[split] += 1
            out.with_mask[split] += bool(mask)
            out.with_clean[split] += bool(clean)
    return out


def _cells(cells: list[tuple[str, str]], shown: int = 6) -> str:
    names = [f"{p}/{d}" for p, d in cells]
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def supports(path: str) -> list[str]:
    """Lines saying which studies, metrics and arms the data set supports, and why not where it does not."""
    s = count_support(path)
    lines = ["what this data set supports:"]
    masked, defects = sum(s.with_mask.values()), sum(s.defect_images.values())
    train_masked, train_defects = s.with_mask["gan_train"], s.defect_images["gan_train"]
    if masked:
        lines.append(
            f"  masks: {masked} of {defects} defect images ({train_masked} of {train_defects} in gan_train) -> "
            "Crop&Paste (dtgan evaluate-crop-paste, downstream arm crop_paste)"
            + (f"; {defects - masked} without a mask are left out of it" if masked < defects else "")
        )
    else:
        lines.append(
            "  masks: none -> no Crop&Paste (dtgan evaluate-crop-paste, downstream arm crop_paste); import the "
            "masks with the images (dtgan data import folders ROOT --masks MASKROOT, or <stem>_mask.png beside them)"
        )
    lines.append(
        "  transfer locality and background PSNR: measured without masks (the most-changed pixels of each "
        "translation), on any data"
    )
    clean = sum(s.with_clean.values())
    if clean:
        lines.append(
            f"  clean backgrounds: {clean} of {defects} defect images ({s.with_clean['val']} in val, the removal "
            "split) -> defect removal (eval/removal_psnr)"
        )
    else:
        lines.append(
            "  clean backgrounds: none -> no defect-removal metric (eval/removal_psnr needs clean pairs)"
        )
    unseen, absent = s.unseen_cells(), s.absent_cells()
    if unseen or absent:
        only = unseen + absent
        lines.append(
            f"  unseen product x defect cells (no gan_train images): {_cells(only)} -> transfer from other products "
            "is the only source of these defects"
            + (
                f"; held-out images measure it for {_cells(unseen)}"
                if unseen
                else "; no real image to measure it"
            )
        )
    else:
        lines.append(
            "  unseen product x defect cells: none (every product has gan_train images of every defect)"
        )
    has_val, has_test = any(k[0] == "val" for k in s.cells), any(k[0] == "test" for k in s.cells)
    if has_val and has_test:
        lines.append("  classifier study (dtgan downstream): val and test rows present")
    else:
        missing = " and ".join(x for x, ok in (("val", has_val), ("test", has_test)) if not ok)
        lines.append(
            f"  classifier study (dtgan downstream): no {missing} rows -> not supported; import with the paper split"
        )
    if not has_val:
        lines.append(
            "  evaluation: no val rows -> pass -o evaluation.removal_split=test to dtgan evaluate and "
            "evaluate-crop-paste (the mvtec presets do)"
        )
    types = Counter(p for p, _ in s.field_cells())
    products = sorted(p for p, n in types.items() if n >= 2)
    if products:
        lines.append(
            "  field classification protocol (downstream preset field_classification): "
            + ", ".join(f"{p} ({types[p]} defect types)" for p in products)
        )
    else:
        lines.append(
            "  field classification protocol: no product with two or more defect types that have both gan_train "
            "and test images (import with --protocol field)"
        )
    return lines
