"""Importers: folder trees and MVTec AD made in the test, and every bad input named in one line."""

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
from dtgan.data.importers import SplitOptions, import_folders
from dtgan.data.mvtec import expand_numbers, table17
from dtgan.data.parquet_io import read_vocab
from dtgan.data.vocab import Vocab

SIZE = 32


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _gray(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def _tree(root: Path, products=("a", "b"), normal=8, scratch=5) -> Path:
    for p, product in enumerate(products):
        for i in range(normal):
            _save(root / product / "normal" / f"n{i}.png", _gray(100 * p + i))
        for i in range(scratch):
            _save(root / product / "scratch" / f"s{i}.png", _gray(1000 + 100 * p + i))
    return root


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


def test_folders_import_reads_every_format_and_splits_each_cell(tmp_path):
    root = _tree(tmp_path / "in")
    _save(root / "a" / "normal" / "rgb.jpg", np.stack([_gray(7)] * 3, axis=-1), quality=95)
    _save(root / "a" / "normal" / "bmp.bmp", _gray(8))
    _save(root / "a" / "normal" / "tif.tif", _gray(9))
    wide = np.arange(SIZE * SIZE, dtype=np.uint16).reshape(SIZE, SIZE) * 60
    _save(root / "a" / "normal" / "deep.png", wide)  # 16-bit gray
    out = tmp_path / "ds.parquet"
    import_folders(str(root), str(out), SIZE, SplitOptions(holdout_per_cell=4, gan_normal_per_product=3))
    table = pq.read_table(out).to_pandas()
    assert read_vocab(str(out)) == Vocab(("a", "b"), ("normal", "scratch"))
    counts = table.groupby(["product", "defect", "split"]).size().to_dict()
    # a/normal: 12 images -> 4 held out (1 val, 3 test), 3 gan_train, 5 gan_holdout.
    assert counts[("a", "normal", "val")] == 1 and counts[("a", "normal", "test")] == 3
    assert counts[("a", "normal", "gan_train")] == 3 and counts[("a", "normal", "gan_holdout")] == 5
    # scratch: 5 images -> min(4, 5 // 2) = 2 held out (1 val, 1 test), 3 gan_train.
    assert counts[("b", "scratch", "val")] == 1 and counts[("b", "scratch", "gan_train")] == 3
    deep = table[table["id"] == "a/normal/deep"]["image"].iloc[0]
    assert decode_gray(deep, "x")[-1, -1] == round(int(wide[-1, -1]) * 255 / 65535)  # 61380 -> 239
    assert set(table["source"]) == {"real"} and table["mask"].isna().all()


def test_other_sizes_are_resized_with_one_counted_warning(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    _save(root / "a" / "normal" / "big.png", _gray(1, 64))
    _save(root / "b" / "normal" / "tall.png", _gray(2, 50)[:, :40])
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(tmp_path / "ds.parquet"), SIZE)
    assert "resized 2 of 28 images to 32x32 px" in caplog.text


def test_images_in_other_modes_are_converted_to_gray_with_one_counted_warning(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    gray = _gray(3)
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 128)])
    Image.fromarray(rgba, "RGBA").save(root / "a" / "normal" / "rgba.png")
    Image.fromarray(np.dstack([gray, np.zeros_like(gray)]), "LA").save(root / "a" / "normal" / "la.png")
    Image.fromarray(gray).convert("P").save(root / "a" / "normal" / "palette.png")
    Image.fromarray(gray > 127).save(root / "b" / "normal" / "bits.png")  # mode "1"
    Image.fromarray(np.dstack([gray] * 3)).convert("CMYK").save(
        root / "b" / "scratch" / "cmyk.jpg", quality=95
    )
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE)
    assert (
        "converted 5 of 31 images to gray from other modes (1 x1, CMYK x1, LA x1, P x1, RGBA x1; alpha dropped)"
        in caplog.text
    )
    table = pq.read_table(out).to_pandas().set_index("id")
    assert np.array_equal(decode_gray(table.loc["a/normal/rgba", "image"], "x"), gray)  # alpha dropped
    assert np.array_equal(decode_gray(table.loc["a/normal/la", "image"], "x"), gray)
    assert set(np.unique(decode_gray(table.loc["b/normal/bits", "image"], "x"))) <= {0, 255}
    cmyk = decode_gray(table.loc["b/scratch/cmyk", "image"], "x").astype(int)
    assert np.abs(cmyk - gray).mean() < 12  # JPEG round trip of the same picture


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda r: (r / "a" / "normal" / "n0.png").write_bytes(b"not an image"),
            "a/normal/n0.png: cannot decode",
        ),
        (
            lambda r: (r / "a" / "normal" / "n1.png").write_bytes(
                (r / "a" / "normal" / "n1.png").read_bytes()[:200]
            ),
            "a/normal/n1.png: cannot decode",
        ),
        (
            lambda r: Image.fromarray(np.zeros((SIZE, SIZE), np.float32)).save(
                r / "a" / "scratch" / "float.tif"
            ),
            "float.tif: unsupported image mode 'F'",
        ),
        (
            lambda r: [f.unlink() for f in (r / "b" / "normal").iterdir()] and (r / "b" / "normal").rmdir(),
            "b: product without a normal/ folder",
        ),
        (
            lambda r: [f.unlink() for f in list((r / "b" / "scratch").iterdir())[2:]],
            "cell (product 'b', defect 'scratch') has 2 image(s): splits would be empty",
        ),
        (lambda r: _save(r / "a" / "dent" / "d.png", _gray(0)), "a/dent: unknown defect label 'dent'"),
    ],
    ids=[
        "corrupt",
        "truncated",
        "unsupported_mode",
        "no_normal",
        "empty_split",
        "unknown_label",
    ],
)
def test_bad_input_gives_one_line_naming_it_and_writes_nothing(tmp_path, capsys, breakage, message):
    root = _tree(tmp_path / "in")
    breakage(root)
    out = tmp_path / "out" / "ds.parquet"
    code, err = _run(
        [
            "data",
            "import",
            "folders",
            str(root),
            "--out",
            str(out),
            "--size",
            str(SIZE),
            "--defects",
            "scratch,spot",
        ],
        capsys,
    )
    assert code == 2
    assert message in err and err.count("\n") == 0, err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_empty_root_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    code, err = _run(
        ["data", "import", "folders", str(tmp_path / "in"), "--out", str(tmp_path / "x.parquet")], capsys
    )
    assert code == 2 and "empty folder" in err


def test_table17_matches_the_papers_sums():
    sums = {
        category: {
            defect: sum(len(expand_numbers(n)) for n in types.values()) for defect, types in defects.items()
        }
        for category, defects in table17().items()
    }
    assert sums == {
        "carpet": {"scratch": 24, "spot": 23},
        "leather": {"scratch": 48, "spot": 39},
        "tile": {"scratch": 17, "spot": 0},
        "wood": {"scratch": 19, "spot": 12},
    }


def _mvtec_tile(root: Path, skip: str | None = None) -> Path:
    for i in range(10):
        _save(root / "tile" / "train" / "good" / f"{i:03d}.png", np.stack([_gray(i, 40)] * 3, -1))
    for i in range(3):
        _save(root / "tile" / "test" / "good" / f"{i:03d}.png", np.stack([_gray(50 + i, 40)] * 3, -1))
    for i in range(17):
        if f"{i:03d}" == skip:
            continue
        _save(root / "tile" / "test" / "crack" / f"{i:03d}.png", np.stack([_gray(90 + i, 40)] * 3, -1))
        mask = np.zeros((40, 40), np.uint8)
        mask[10:12, 5:30] = 255
        _save(root / "tile" / "ground_truth" / "crack" / f"{i:03d}_mask.png", mask)
    return root


def test_mvtec_import_aggregates_table17_types_and_keeps_masks(tmp_path, capsys):
    root = _mvtec_tile(tmp_path / "mvtec")
    out = tmp_path / "mvtec.parquet"
    assert (
        main(
            [
                "data",
                "import",
                "mvtec",
                str(root),
                "--categories",
                "tile",
                "--out",
                str(out),
                "--size",
                str(SIZE),
                "--holdout",
                "4",
            ]
        )
        == 0
    )
    table = pq.read_table(out).to_pandas()
    assert (table["defect"] == "scratch").sum() == 17 and (table["defect"] == "normal").sum() == 13
    masks = table[table["defect"] == "scratch"]["mask"]
    assert masks.notna().all()
    mask = decode_gray(masks.iloc[0], "m")
    assert mask.shape == (SIZE, SIZE) and 0 < (mask > 0).mean() < 0.1
    assert "tile/normal/train_000" in set(table["id"]) and "tile/scratch/crack_016" in set(table["id"])


def test_mvtec_missing_file_names_it(tmp_path, capsys):
    root = _mvtec_tile(tmp_path / "mvtec", skip="005")
    code, err = _run(
        ["data", "import", "mvtec", str(root), "--categories", "tile", "--out", str(tmp_path / "m.parquet")],
        capsys,
    )
    assert code == 2 and "crack/005.png: missing" in err
    code, err = _run(
        [
            "data",
            "import",
            "mvtec",
            str(root),
            "--categories",
            "bottle",
            "--out",
            str(tmp_path / "m.parquet"),
        ],
        capsys,
    )
    assert code == 2 and "'bottle' is not in Table 17" in err


def test_images_in_sub_folders_of_a_defect_folder_are_imported_with_a_warning_naming_the_folder(
    tmp_path, caplog
):
    root = _tree(tmp_path / "in")
    _save(root / "a" / "scratch" / "day2" / "s0.png", _gray(500))  # same stem as a/scratch/s0.png
    _save(root / "a" / "scratch" / "day2" / "deep" / "s9.png", _gray(501))
    _save(root / "b" / "normal" / "cam1" / "n0.png", _gray(502))
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE)
    assert "imported 3 image(s) from 2 sub-folder(s) of defect folders" in caplog.text
    assert "a/scratch/day2 (2), b/normal/cam1 (1)" in caplog.text
    table = pq.read_table(out).to_pandas().set_index("id")
    assert len(table) == 29
    assert table.loc["a/scratch/day2/deep/s9", "defect"] == "scratch"
    assert np.array_equal(decode_gray(table.loc["a/scratch/day2/s0", "image"], "x"), _gray(500))
    assert np.array_equal(decode_gray(table.loc["a/scratch/s0", "image"], "x"), _gray(1000))


def test_dangling_symlinks_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    (root / "a" / "normal" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "b" / "scratch" / "gone2.png").symlink_to(tmp_path / "nowhere2.png")
    (root / "b" / "spot").symlink_to(tmp_path / "no_folder")
    (root / "a" / "normal" / "alias.png").symlink_to(root / "a" / "normal" / "n0.png")  # a live one
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE)
    assert (
        "skipped 3 dangling symlink(s) (their targets do not exist): a/normal/gone.png, b/scratch/gone2.png, "
        "b/spot" in caplog.text
    )
    assert "a/normal/alias" in set(pq.read_table(out, columns=["id"]).column("id").to_pylist())


def test_a_product_with_only_normal_images_is_warned_about_at_import_and_at_training_start(tmp_path, caplog):
    from dtgan.config import load_config
    from dtgan.training.data import build_training_data
    from dtgan.training.environment import Environment

    root = _tree(tmp_path / "in", products=("a", "b", "c"))
    for f in (root / "c" / "scratch").iterdir():
        f.unlink()
    (root / "c" / "scratch").rmdir()
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE, SplitOptions(holdout_per_cell=2, gan_normal_per_product=4))
    expected = "1 product(s) with only normal images (c): they can receive other products' defects"
    assert caplog.text.count(expected) == 1
    caplog.clear()
    config = load_config("smoke", [f"data.path={out}", f"model.img_size={SIZE}", "train.batch_size=2"])
    with caplog.at_level(logging.WARNING):
        build_training_data(config, Environment(device=torch.device("cpu")))
    assert f"{out} (gan_train): {expected}" in caplog.text


@pytest.mark.parametrize("kind", ["folders", "mvtec"])
def test_out_that_is_a_folder_is_a_one_line_error_before_any_image_is_read(tmp_path, capsys, kind):
    root = _tree(tmp_path / "in") if kind == "folders" else _mvtec_tile(tmp_path / "mvtec")
    taken = tmp_path / "taken"
    taken.mkdir()
    extra = ["--categories", "tile"] if kind == "mvtec" else []
    code, err = _run(["data", "import", kind, str(root), "--out", str(taken), *extra], capsys)
    assert code == 2 and err.count("\n") == 0, err
    assert f"--out {taken}: is a folder; name the .parquet file to write" in err
    assert list(taken.iterdir()) == []
