"""Masks for folder imports: a mask tree mirroring ROOT (--masks), <stem>_mask.png beside the image, masks of other
sizes, missing masks counted, and malformed masks refused in one line with nothing written."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.codec import decode_gray
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.importers import SplitOptions, import_folders
from dtgan.evaluation.crop_paste import defect_bank

SIZE = 32
OPTIONS = SplitOptions(holdout_per_cell=4, gan_normal_per_product=3)


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _gray(seed: int, shape=(SIZE, SIZE)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _mask(shape=(SIZE, SIZE), box=(4, 10, 6, 20)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = 255
    return mask


def _tree(root: Path, normal=8, scratch=5) -> Path:
    for i in range(normal):
        _save(root / "a" / "normal" / f"n{i}.png", _gray(i))
    for i in range(scratch):
        _save(root / "a" / "scratch" / f"s{i}.png", _gray(100 + i))
    return root


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


def _table(path: Path):
    return pq.read_table(path).to_pandas().set_index("id")


def test_masks_beside_their_images_are_found_without_the_flag_and_never_imported_as_images(tmp_path):
    root = _tree(tmp_path / "in")
    for i in range(5):
        _save(root / "a" / "scratch" / f"s{i}_mask.png", _mask(box=(i, i + 3, 2, 30)))
    out = tmp_path / "ds.parquet"
    import_folders(str(root), str(out), SIZE, OPTIONS)
    table = _table(out)
    assert len(table) == 13 and not any(i.endswith("_mask") for i in table.index)
    mask = decode_gray(table.loc["a/scratch/s2", "mask"], "m")
    assert np.array_equal(mask, _mask(box=(2, 5, 2, 30)))
    assert table.loc[table["defect"] == "normal", "mask"].isna().all()


@pytest.mark.parametrize("name", ["{stem}.png", "{stem}_mask.png"])
def test_a_mask_tree_mirroring_root_gives_each_defect_image_its_mask(tmp_path, capsys, name):
    root = _tree(tmp_path / "in")
    masks = tmp_path / "masks"
    for i in range(5):
        _save(masks / "a" / "scratch" / name.format(stem=f"s{i}"), _mask(box=(0, 2 + i, 0, 8)))
    out = tmp_path / "ds.parquet"
    args = ["data", "import", "folders", str(root), "--masks", str(masks), "--out", str(out)]
    code, err = _run([*args, "--size", str(SIZE), "--holdout", "4", "--gan-normal", "3"], capsys)
    assert code == 0, err
    table = _table(out)
    for i in range(5):
        assert (decode_gray(table.loc[f"a/scratch/s{i}", "mask"], "m") > 0).sum() == (2 + i) * 8


def test_a_mask_of_another_size_is_resized_with_its_image_and_counted(tmp_path, caplog):
    root = _tree(tmp_path / "in", scratch=4)
    _save(root / "a" / "scratch" / "wide.png", _gray(7, (30, 40)))  # an image of another size too
    _save(root / "a" / "scratch" / "wide_mask.png", _mask((60, 80), box=(0, 30, 0, 80)))  # top half, 2x
    _save(root / "a" / "scratch" / "s0_mask.png", _mask((64, 64), box=(0, 64, 0, 32)))  # left half, 2x
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE, OPTIONS)
    assert "2 mask(s) differ in size from their image and were resized with it to 32x32 px" in caplog.text
    table = _table(out)
    left = decode_gray(table.loc["a/scratch/s0", "mask"], "m")
    assert left[:, :16].all() and not left[:, 16:].any()
    top = decode_gray(table.loc["a/scratch/wide", "mask"], "m")
    assert top[:16].all() and not top[16:].any()


def test_missing_masks_are_one_counted_warning_and_crop_paste_says_how_many_it_could_not_use(
    tmp_path, caplog
):
    root = _tree(tmp_path / "in", scratch=6)
    for i in (0, 1, 2, 3):
        _save(root / "a" / "scratch" / f"s{i}_mask.png", _mask())
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE, OPTIONS)
    assert "2 of 6 defect image(s) have no mask" in caplog.text
    assert "a/scratch/s4, a/scratch/s5" in caplog.text
    caplog.clear()
    ds = DefectImageDataset(str(out), splits=("gan_train", "val", "test"), img_size=SIZE, defects=["scratch"])
    with caplog.at_level(logging.WARNING):
        bank = defect_bank(ds.images_uint8, ds.masks_uint8, ds.y, ds.p, "scratches")
    assert len(bank) == 4
    assert "scratches: 2 of 6 defect images have no mask or an empty one and cannot be pasted" in caplog.text


def test_no_mask_anywhere_is_no_warning(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(tmp_path / "ds.parquet"), SIZE, OPTIONS)
    assert "no mask" not in caplog.text


def test_soft_edges_palette_and_gray_rgb_masks_are_binarised(tmp_path):
    root = _tree(tmp_path / "in", scratch=4)
    soft = _mask()
    soft[10, 6:20] = 128  # an antialiased edge row
    _save(root / "a" / "scratch" / "s0_mask.png", soft)
    _save(root / "a" / "scratch" / "s1_mask.png", np.stack([_mask()] * 3, -1))  # gray saved as RGB
    Image.fromarray(_mask() // 255).convert("P").save(root / "a" / "scratch" / "s2_mask.png")  # indices 0/1
    _save(root / "a" / "scratch" / "s3_mask.png", _mask() > 0)  # 1-bit
    out = tmp_path / "ds.parquet"
    import_folders(str(root), str(out), SIZE, OPTIONS)
    table = _table(out)
    expected = _mask() > 0
    for i in (1, 2, 3):
        assert np.array_equal(decode_gray(table.loc[f"a/scratch/s{i}", "mask"], "m") > 0, expected), i
    assert (decode_gray(table.loc["a/scratch/s0", "mask"], "m") > 0).sum() == expected.sum() + 14


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: _save(p, np.dstack([_mask(), np.zeros((SIZE, SIZE), np.uint8), _mask()])),
            "s1_mask.png: mask is a colour image (RGB); save it as a single-channel (gray) image",
        ),
        (
            lambda p: _save(p, _gray(5)),
            "s1_mask.png: not a binary mask (",
        ),
        (lambda p: p.write_bytes(b"not a png"), "s1_mask.png: cannot decode mask"),
        (
            lambda p: _save(p, np.zeros((SIZE, SIZE), np.float32), format="TIFF"),
            "s1_mask.png: mask mode 'F' is not single-channel",
        ),
        (
            lambda p: _save(p, _mask((SIZE, 2 * SIZE))),
            "s1_mask.png: mask is 64x32 px, its image s1.png 32x32 px (another aspect ratio)",
        ),
    ],
    ids=["colour", "not_binary", "corrupt", "float", "other_aspect"],
)
def test_a_malformed_mask_is_one_line_naming_the_file_and_nothing_is_written(tmp_path, capsys, make, message):
    root = _tree(tmp_path / "in")
    for i in range(5):
        _save(root / "a" / "scratch" / f"s{i}_mask.png", _mask())
    make(root / "a" / "scratch" / "s1_mask.png")
    out = tmp_path / "out" / "ds.parquet"
    code, err = _run(["data", "import", "folders", str(root), "--out", str(out), "--size", str(SIZE)], capsys)
    assert code == 2 and err.count("\n") == 0, err
    assert message in err, err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_a_missing_mask_root_is_one_line(tmp_path, capsys):
    root = _tree(tmp_path / "in")
    out = tmp_path / "ds.parquet"
    code, err = _run(
        ["data", "import", "folders", str(root), "--masks", str(tmp_path / "nope"), "--out", str(out)], capsys
    )
    assert code == 2 and "nope: no such folder; it mirrors ROOT's <product>/<defect>/ tree" in err
    assert not out.exists()


def test_masks_reach_the_dataset_as_0_255(tmp_path):
    root = _tree(tmp_path / "in")
    for i in range(5):
        _save(root / "a" / "scratch" / f"s{i}_mask.png", _mask())
    out = tmp_path / "ds.parquet"
    import_folders(str(root), str(out), SIZE, OPTIONS)
    ds = DefectImageDataset(str(out), splits=("gan_train",), img_size=SIZE, defects=["scratch"])
    assert ds.masks_uint8 is not None and set(torch.unique(ds.masks_uint8).tolist()) == {0, 255}


def test_mask_files_that_belong_to_no_image_are_one_counted_warning(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    masks = tmp_path / "masks"
    for i in range(5):
        _save(masks / "a" / "scratch" / f"s{i}.png", _mask())
    _save(masks / "a" / "scrach" / "s0.png", _mask())  # a misspelt defect folder
    _save(root / "a" / "scratch" / "zz_mask.png", _mask())  # beside, but no image zz
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(tmp_path / "ds.parquet"), SIZE, OPTIONS, masks=str(masks))
    assert "2 mask file(s) are no image's mask" in caplog.text
    assert "a/scratch/zz_mask.png" in caplog.text and "masks/a/scrach/s0.png" in caplog.text
    assert "have no mask" not in caplog.text
