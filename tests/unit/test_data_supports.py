"""`dtgan data describe` says what a data set supports: masks -> Crop&Paste, clean pairs -> removal, unseen
product x defect cells -> transfer is the only source, val/test -> the classifier study, defect types with gan_train
and test images -> the field's classification protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.importers import import_folders
from dtgan.data.supports import count_support, supports
from dtgan.data.synth import synthesize_benchmark

SIZE = 32


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _tree(root: Path) -> Path:
    """a: normal, scratch (masks on 4 of 6), spot; b: normal, scratch (no spot folder at all)."""
    rng = np.random.default_rng(0)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[3:9, 3:20] = 255
    for product, defects in (("a", ("normal", "scratch", "spot")), ("b", ("normal", "scratch"))):
        for defect in defects:
            for i in range(6):
                _save(
                    root / product / defect / f"{i}.png", rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
                )
                if product == "a" and defect == "scratch" and i < 4:
                    _save(root / product / defect / f"{i}_mask.png", mask)
    return root


def test_a_folder_import_says_masks_partial_no_clean_pairs_and_the_cells_only_transfer_can_fill(tmp_path):
    out = tmp_path / "ds.parquet"
    import_folders(str(_tree(tmp_path / "in")), str(out), SIZE, protocol="field")
    counts = count_support(str(out))
    assert sum(counts.with_mask.values()) == 4 and sum(counts.defect_images.values()) == 18
    assert counts.absent_cells() == [("b", "spot")] and counts.unseen_cells() == []
    text = "\n".join(supports(str(out)))
    in_train = counts.with_mask["gan_train"]
    assert 0 < in_train < 4  # the field rule puts 2 of a/scratch's 6 images in gan_train
    assert f"masks: 4 of 18 defect images ({in_train} of 6 in gan_train) -> Crop&Paste" in text
    assert "; 14 without a mask are left out of it" in text
    assert "clean backgrounds: none -> no defect-removal metric" in text
    assert (
        "unseen product x defect cells (no gan_train images): b/spot -> transfer from other products" in text
    )
    assert "no real image to measure it" in text
    assert "classifier study (dtgan downstream): no val rows -> not supported" in text
    assert "evaluation: no val rows -> pass -o evaluation.removal_split=test" in text
    assert (
        "field classification protocol (downstream preset field_classification): a (2 defect types)" in text
    )


def test_describe_of_the_embedded_benchmark_says_crop_paste_removal_and_its_unseen_cell(tmp_path, capsys):
    out = tmp_path / "s.parquet"
    synthesize_benchmark(str(out), size=SIZE, scale=0.02, seed=0)
    assert main(["data", "describe", str(out)]) == 0
    text = capsys.readouterr().out
    assert "masks: 90 of 90 defect images (30 of 30 in gan_train) -> Crop&Paste" in text
    assert (
        "clean backgrounds: 90 of 90 defect images (18 in val, the removal split) -> defect removal" in text
    )
    assert "(no gan_train images): woven/spot -> transfer" in text and "held-out images measure it" in text
    assert "classifier study (dtgan downstream): val and test rows present" in text
    assert "evaluation: no val rows" not in text


def test_no_masks_says_how_to_import_them(tmp_path):
    root = _tree(tmp_path / "in")
    for mask in root.rglob("*_mask.png"):
        mask.unlink()
    out = tmp_path / "ds.parquet"
    import_folders(str(root), str(out), SIZE, protocol="field")
    text = "\n".join(supports(str(out)))
    assert "masks: none -> no Crop&Paste" in text and "--masks MASKROOT" in text
