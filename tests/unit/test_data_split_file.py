"""A split the user controls (--split-file CSV) and the field's one-third rule for folder trees (--protocol field),
both stored as the file's split rule and shown by `dtgan data describe`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.importers import SplitOptions, import_folders
from dtgan.data.parquet_io import read_info
from dtgan.data.splits import FIELD_SPLIT_RULE, field_defect_split

SIZE = 32


def _tree(root: Path, normal=6, scratch=7, spot=4) -> Path:
    rng = np.random.default_rng(0)
    for defect, count in (("normal", normal), ("scratch", scratch), ("spot", spot)):
        for i in range(count):
            path = root / "a" / defect / f"{defect[:2]}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)).save(path)
    return root


def _ids(root: Path) -> list[str]:
    return sorted(
        f"{p.parent.parent.name}/{p.parent.name}/{p.stem}" for p in root.rglob("*.png") if p.is_file()
    )


def _csv(path: Path, rows: list[tuple[str, str]], header: str = "id,split") -> Path:
    path.write_text(header + "\n" + "".join(f"{i},{s}\n" for i, s in rows))
    return path


def _own_split(ids: list[str]) -> list[tuple[str, str]]:
    """normal: 2 gan_train, 2 gan_holdout, 1 val, 1 test; defects: test for the first two, else gan_train."""
    out = []
    for row_id in ids:
        n = int(row_id.rsplit("/", 1)[1][2:])
        if row_id.startswith("a/normal"):
            out.append((row_id, ("gan_train", "gan_train", "gan_holdout", "gan_holdout", "val", "test")[n]))
        else:
            out.append((row_id, "test" if n < 2 else ("val" if n == 2 else "gan_train")))
    return out


def _import(capsys, root: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["data", "import", "folders", str(root), "--out", str(out), "--size", str(SIZE), *extra])
    return code, capsys.readouterr().err.strip()


def test_a_split_file_decides_every_split_and_is_shown_by_describe(tmp_path, capsys):
    root = _tree(tmp_path / "in")
    own = _own_split(_ids(root))
    own[0] = (own[0][0] + ".png", own[0][1])  # an id may keep its extension
    split_file = _csv(tmp_path / "split.csv", own)
    out = tmp_path / "ds.parquet"
    code, err = _import(capsys, root, out, "--split-file", str(split_file))
    assert code == 0, err
    table = pq.read_table(out, columns=["id", "split"]).to_pandas()
    assert dict(zip(table["id"], table["split"])) == {i.removesuffix(".png"): s for i, s in own}
    rule = read_info(str(out))["split_rule"]
    assert rule.startswith(f"split file {split_file} (sha256 ") and "every image listed once" in rule
    assert main(["data", "describe", str(out)]) == 0
    assert f"split_rule: {rule}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda rows: [*rows, ("a/scratch/sc99", "test")],
            "split.csv:19: id 'a/scratch/sc99' is no image of",
        ),
        (lambda rows: rows[:-3], "split.csv: 3 image(s) of"),
        (lambda rows: [*rows, rows[0]], "split.csv:19: id 'a/normal/no0' is listed twice (also line 2)"),
        (
            lambda rows: [(rows[0][0], "train"), *rows[1:]],
            "split.csv:2: id 'a/normal/no0' has split 'train'; use one of gan_train, gan_holdout, val, test",
        ),
    ],
    ids=["unknown_id", "missing_ids", "repeated_id", "unknown_split"],
)
def test_a_bad_split_file_is_one_line_naming_the_file_and_the_id(tmp_path, capsys, edit, message):
    root = _tree(tmp_path / "in")
    split_file = _csv(tmp_path / "split.csv", edit(_own_split(_ids(root))))
    out = tmp_path / "out" / "ds.parquet"
    code, err = _import(capsys, root, out, "--split-file", str(split_file))
    assert code == 2 and err.count("\n") == 0, err
    assert message in err, err
    if "missing" in message or "image(s) of" in message:
        assert "have no row, e.g. a/spot/sp1, a/spot/sp2, a/spot/sp3; list every image as id,split" in err
    assert not out.exists() and not out.parent.exists()


def test_a_split_file_without_header_or_missing_is_one_line(tmp_path, capsys):
    root = _tree(tmp_path / "in")
    out = tmp_path / "ds.parquet"
    bad = _csv(tmp_path / "split.csv", _own_split(_ids(root)), header="name,set")
    code, err = _import(capsys, root, out, "--split-file", str(bad))
    assert code == 2 and "split.csv: line 1 must be the header 'id,split'" in err
    code, err = _import(capsys, root, out, "--split-file", str(tmp_path / "none.csv"))
    assert code == 2 and "none.csv: no such file" in err
    code, err = _import(capsys, root, out, "--split-file", str(bad), "--holdout", "4")
    assert code == 2 and "--holdout: the split file decides" in err
    assert not out.exists()


def test_field_protocol_for_folders_shares_the_mvtec_one_third_rule(tmp_path, capsys):
    root = _tree(tmp_path / "in")
    out = tmp_path / "ds.parquet"
    code, err = _import(capsys, root, out, "--protocol", "field", "--gan-normal", "2")
    assert code == 0, err
    table = pq.read_table(out, columns=["defect", "split"]).to_pandas()
    counts = table.groupby(["defect", "split"]).size().to_dict()
    for defect, n in (("scratch", 7), ("spot", 4)):
        plan = field_defect_split("a", defect, n)
        assert counts[(defect, "gan_train")] == plan.gan_train == max(1, n // 3)
        assert counts[(defect, "test")] == plan.test == n - max(1, n // 3)
    assert counts[("normal", "gan_train")] == 2 and counts[("normal", "gan_holdout")] == 4
    assert "val" not in set(table["split"])
    info = read_info(str(out))
    assert info["protocol"] == "field" and info["split_rule"].startswith(FIELD_SPLIT_RULE)
    # the same seed splits the same; another seed differs
    again = tmp_path / "again.parquet"
    import_folders(str(root), str(again), SIZE, SplitOptions(gan_normal_per_product=2), protocol="field")
    assert pq.read_table(again).column("split").to_pylist() == pq.read_table(out).column("split").to_pylist()
    code, err = _import(capsys, root, tmp_path / "x.parquet", "--protocol", "field", "--holdout", "4")
    assert code == 2 and "--holdout: the field protocol holds out no val set" in err


def test_paper_rule_is_stored_with_its_numbers(tmp_path):
    root = _tree(tmp_path / "in", normal=8, scratch=5, spot=5)
    out = tmp_path / "ds.parquet"
    import_folders(
        str(root), str(out), SIZE, SplitOptions(holdout_per_cell=4, gan_normal_per_product=3, seed=2)
    )
    info = read_info(str(out))
    assert info["protocol"] == "paper"
    assert "min(4, n // 2) held out" in info["split_rule"] and "min(3, rest // 2)" in info["split_rule"]
    assert "(seed 2)" in info["split_rule"]
