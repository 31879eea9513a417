"""Import hardening: labels that collide after sanitising or name the aggregate are refused in one line, an empty
defect folder is a skipped class, symlinks never import an image under another folder's label, and a Parquet file
with a repeated id is refused when read."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.importers import SplitOptions, import_folders
from dtgan.data.parquet_io import INFO_KEY, SCHEMA, read_table, read_vocab
from dtgan.data.vocab import METADATA_KEY, Vocab
from dtgan.errors import DataError

SIZE = 32
OPTIONS = SplitOptions(holdout_per_cell=4, gan_normal_per_product=3)


def _save(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(path)


def _tree(root: Path, products=("a", "b"), defects=("scratch",)) -> Path:
    for p, product in enumerate(products):
        for i in range(8):
            _save(root / product / "normal" / f"n{i}.png", 100 * p + i)
        for d, defect in enumerate(defects):
            for i in range(5):
                _save(root / product / defect / f"s{i}.png", 1000 + 100 * p + 10 * d + i)
    return root


def _run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("products", "defects", "message"),
    [
        (("a.b", "a-b"), ("scratch",), "products 'a-b' and 'a.b' would share the file and metric name 'a-b'"),
        (
            ("Carpet", "carpet"),
            ("scratch",),
            "products 'Carpet' and 'carpet' would share the file and metric name 'carpet'",
        ),
        (
            ("a",),
            ("Scratch", "scratch"),
            "defects 'Scratch' and 'scratch' would share the file and metric name 'scratch'",
        ),
        (
            ("a",),
            ("scr.atch", "scr-atch"),
            "defects 'scr-atch' and 'scr.atch' would share the file and metric name 'scr-atch'",
        ),
        (
            ("all", "b"),
            ("scratch",),
            "product 'all' is named like the aggregate 'all' of the reports",
        ),
        (("ALL",), ("scratch",), "product 'ALL' is named like the aggregate"),
    ],
    ids=["dot_dash", "case", "defect_case", "defect_dot_dash", "aggregate", "aggregate_upper"],
)
def test_colliding_or_aggregate_names_are_refused_in_one_line_naming_both(
    tmp_path, capsys, products, defects, message
):
    root = _tree(tmp_path / "in", products, defects)
    out = tmp_path / "out" / "ds.parquet"
    code, err = _run(["data", "import", "folders", str(root), "--out", str(out), "--size", str(SIZE)], capsys)
    assert code == 2 and err.count("\n") == 0, err
    assert message in err, err
    assert "rename" in err and not out.parent.exists()


def test_an_empty_defect_folder_is_a_warning_and_a_skipped_class(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    (root / "b" / "spot").mkdir()
    (root / "b" / "dent" / "sub").mkdir(parents=True)  # only an empty sub-folder
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE, OPTIONS)
    assert "skipped 2 empty defect folder(s)" in caplog.text and "b/dent, b/spot" in caplog.text
    assert read_vocab(str(out)) == Vocab(("a", "b"), ("normal", "scratch"))


def test_an_empty_normal_folder_still_stops(tmp_path, capsys):
    root = _tree(tmp_path / "in")
    for f in (root / "b" / "normal").iterdir():
        f.unlink()
    code, err = _run(["data", "import", "folders", str(root), "--out", str(tmp_path / "x.parquet")], capsys)
    assert code == 2 and "b/normal: empty folder" in err


def test_symlinks_never_import_an_image_twice_under_another_label(tmp_path, caplog):
    root = _tree(tmp_path / "in")
    (root / "a" / "scratch" / "up").symlink_to(root / "a")  # a loop through the product folder
    (root / "a" / "scratch" / "self").symlink_to(root / "a" / "scratch")  # a loop onto itself
    (root / "a" / "scratch" / "n0.png").symlink_to(root / "a" / "normal" / "n0.png")  # a normal image
    (root / "b" / "spot").symlink_to(root / "a" / "scratch")  # a defect folder that is another one
    outside = tmp_path / "elsewhere"
    _save(outside / "x.png", 7)
    (root / "b" / "scratch" / "x.png").symlink_to(outside / "x.png")  # outside ROOT: imported
    (root / "b" / "normal" / "x.png").symlink_to(outside / "x.png")  # the same file under a second label
    out = tmp_path / "ds.parquet"
    with caplog.at_level(logging.WARNING):
        import_folders(str(root), str(out), SIZE, OPTIONS)
    table = pq.read_table(out, columns=["id", "product", "defect"]).to_pandas()
    labels = dict(zip(table["id"], zip(table["product"], table["defect"])))
    assert len(table) == 8 + 5 + 8 + 5 + 1
    assert all(labels[f"a/normal/n{i}"] == ("a", "normal") for i in range(8))
    assert not any(i.startswith(("a/scratch/up", "a/scratch/self", "b/spot")) for i in labels)
    assert "a/scratch/n0" not in labels and "b/normal/x" in labels and "b/scratch/x" not in labels
    assert read_vocab(str(out)).defects == ("normal", "scratch")
    assert (
        "skipped 4 symlink(s) that lead into another folder of ROOT or to an image imported under "
        in caplog.text
    )
    assert (
        "skipped 1 symlinked folder(s) reached a second time (a symlink loop): a/scratch/self" in caplog.text
    )


def _parquet_with_ids(path: Path, ids: list[str]) -> Path:
    n = len(ids)
    png = b"never decoded by read_table"
    table = pa.Table.from_pydict(
        {
            "id": ids,
            "product": ["a"] * n,
            "defect": ["normal"] * n,
            "split": ["gan_train"] * n,
            "source": ["real"] * n,
            "image": [png] * n,
            "mask": [None] * n,
            "clean": [None] * n,
        },
        schema=SCHEMA,
    )
    metadata = {
        METADATA_KEY: Vocab(("a",), ("normal",)).to_json().encode(),
        INFO_KEY: json.dumps({}).encode(),
    }
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def test_a_parquet_file_with_a_repeated_id_is_refused_when_read(tmp_path, capsys):
    path = _parquet_with_ids(tmp_path / "dup.parquet", ["a/normal/0", "a/normal/1", "a/normal/0"])
    with pytest.raises(
        DataError, match=r"dup.parquet: id 'a/normal/0' appears more than once \(rows 0 and 2\)"
    ):
        read_table(str(path))
    with pytest.raises(DataError, match="appears more than once"):
        read_table(str(path), columns=["split", "defect"])  # a read without the id column checks it too
    code, err = _run(["data", "describe", str(path)], capsys)
    assert code == 2 and err.count("\n") == 0 and "id 'a/normal/0' appears more than once" in err
    ok = _parquet_with_ids(tmp_path / "ok.parquet", ["a/normal/0", "a/normal/1"])
    assert read_table(str(ok))[0].num_rows == 2
