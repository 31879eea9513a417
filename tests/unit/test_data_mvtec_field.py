"""MVTec AD under the field's protocol (DFMGAN, AnomalyDiffusion, SeaS) on a tiny MVTec tree made in the test:
exact split counts, masks on every anomaly, seeded and per-category deterministic, bad inputs named in one line,
and the MVTec presets resolving through the config loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dtgan.cli.main import main
from dtgan.config.loader import load_config
from dtgan.data.describe import describe
from dtgan.data.importers import SplitOptions
from dtgan.data.mvtec import TEXTURE_CATEGORIES, import_mvtec
from dtgan.data.parquet_io import read_info, read_vocab
from dtgan.data.splits import FIELD_SPLIT_RULE, field_defect_split
from dtgan.errors import DataError

SIZE = 16
REPO = Path(__file__).resolve().parents[2]
# category -> defect type -> anomalies; 5 and 8 tell floor(n/3) from round/ceil, 2 is the 1-image minimum.
TYPES = {"carpet": {"color": 8, "hole": 2, "thread": 3}, "grid": {"bent": 5, "thread": 9}}
NORMALS = {"carpet": (9, 3), "grid": (6, 2)}  # (train/good, test/good)


def _png(path: Path, seed: int, rgb: bool = True, mask: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mask:
        array = np.zeros((20, 20), np.uint8)
        array[4 + seed % 5 : 9 + seed % 5, 3:15] = 255
    else:
        gray = np.random.default_rng(seed).integers(0, 256, (20, 20), dtype=np.uint8)
        array = np.stack([gray] * 3, -1) if rgb else gray
    Image.fromarray(array).save(path)


def _mvtec(root: Path, types=TYPES, normals=NORMALS, skip_mask: str | None = None) -> Path:
    """MVTec's layout: <category>/train/good, <category>/test/<type>/*.png, <category>/ground_truth/<type>/*_mask.png."""
    seed = 0
    for category, per_type in types.items():
        n_train, n_test = normals[category]
        for i in range(n_train):
            _png(root / category / "train" / "good" / f"{i:03d}.png", seed := seed + 1)
        for i in range(n_test):
            _png(root / category / "test" / "good" / f"{i:03d}.png", seed := seed + 1)
        for mvtec_type, count in per_type.items():
            for i in range(count):
                _png(root / category / "test" / mvtec_type / f"{i:03d}.png", seed := seed + 1)
                if f"{category}/{mvtec_type}/{i:03d}" != skip_mask:
                    _png(root / category / "ground_truth" / mvtec_type / f"{i:03d}_mask.png", i, mask=True)
    return root


def _import(root: Path, out: Path, categories=("carpet", "grid"), seed: int = 0, **options):
    import_mvtec(str(root), str(out), categories, SIZE, SplitOptions(seed=seed, **options), protocol="field")
    return pq.read_table(out).to_pandas()


def _counts(table) -> dict[tuple[str, str, str], int]:
    return table.groupby(["product", "defect", "split"]).size().to_dict()


def test_split_rule_is_floor_of_a_third_with_at_least_one_each():
    assert [
        (field_defect_split("c", "t", n).gan_train, field_defect_split("c", "t", n).test)
        for n in (2, 3, 5, 8, 9)
    ] == [
        (1, 1),
        (1, 2),
        (1, 4),
        (2, 6),
        (3, 6),
    ]
    # MVTec's smallest texture cells: wood color has 8 anomalies, grid's glue and thread 11.
    assert field_defect_split("wood", "color", 8).labels().count("gan_train") == 2
    assert field_defect_split("grid", "glue", 11).labels().count("gan_train") == 3
    with pytest.raises(DataError, match="has 1 anomaly image"):
        field_defect_split("carpet", "hole", 1)


def test_field_split_counts_are_exact_per_category_and_defect_type(tmp_path):
    table = _import(_mvtec(tmp_path / "mvtec"), tmp_path / "field.parquet")
    counts = _counts(table)
    for category, per_type in TYPES.items():
        for mvtec_type, n in per_type.items():
            train = max(1, n // 3)
            assert counts[(category, mvtec_type, "gan_train")] == train
            assert counts[(category, mvtec_type, "test")] == n - train
            assert (category, mvtec_type, "val") not in counts and (
                category,
                mvtec_type,
                "gan_holdout",
            ) not in counts
        n_train, n_test = NORMALS[category]
        assert counts[(category, "normal", "gan_train")] == n_train // 2
        assert counts[(category, "normal", "gan_holdout")] == n_train - n_train // 2
        assert counts[(category, "normal", "test")] == n_test  # test/good joins the test set
    assert set(table["split"]) == {"gan_train", "gan_holdout", "test"}  # no val under the field protocol
    assert len(table) == sum(sum(t.values()) for t in TYPES.values()) + sum(
        a + b for a, b in NORMALS.values()
    )
    # MVTec's own defect types are the labels (a type shared by two categories is one domain)
    assert read_vocab(str(tmp_path / "field.parquet")).defects == (
        "normal",
        "bent",
        "color",
        "hole",
        "thread",
    )
    defects = table[table["defect"] != "normal"]
    assert defects["mask"].notna().all() and table[table["defect"] == "normal"]["mask"].isna().all()
    # normal test images are test/good, never train/good
    normal_test = table[(table["defect"] == "normal") & (table["split"] == "test")]
    assert normal_test["id"].str.contains("/normal/test_").all()
    assert "carpet/color/007" in set(table["id"]) and "grid/normal/train_005" in set(table["id"])


def test_gan_normal_caps_the_normal_training_images(tmp_path):
    table = _import(_mvtec(tmp_path / "mvtec"), tmp_path / "f.parquet", gan_normal_per_product=2)
    counts = _counts(table)
    assert counts[("carpet", "normal", "gan_train")] == 2 and counts[("carpet", "normal", "gan_holdout")] == 7


def test_field_split_is_seeded_recorded_and_the_same_for_a_category_imported_alone(tmp_path):
    root = _mvtec(tmp_path / "mvtec")
    first = _import(root, tmp_path / "a.parquet", seed=3).set_index("id")["split"]
    again = _import(root, tmp_path / "b.parquet", seed=3).set_index("id")["split"]
    other = _import(root, tmp_path / "c.parquet", seed=4).set_index("id")["split"]
    assert first.equals(again)
    assert not first.equals(other.loc[first.index])  # another seed draws other images (same counts)
    assert _counts(_import(root, tmp_path / "d.parquet", seed=4)) == _counts(
        _import(root, tmp_path / "e.parquet")
    )
    alone = _import(root, tmp_path / "carpet.parquet", categories=("carpet",), seed=3).set_index("id")[
        "split"
    ]
    assert alone.equals(first[first.index.str.startswith("carpet/")].loc[alone.index])
    info = read_info(str(tmp_path / "a.parquet"))
    assert info["protocol"] == "field" and info["split_rule"] == FIELD_SPLIT_RULE and info["seed"] == 3
    assert info["categories"] == ["carpet", "grid"]
    text = describe(str(tmp_path / "a.parquet"))
    assert "protocol: field" in text and "floor(n / 3)" in text


def test_field_protocol_through_the_cli_and_its_bad_inputs(tmp_path, capsys):
    root = _mvtec(tmp_path / "mvtec")
    out = tmp_path / "cli.parquet"
    base = [
        "data",
        "import",
        "mvtec",
        str(root),
        "--protocol",
        "field",
        "--size",
        str(SIZE),
        "--out",
        str(out),
    ]
    assert main([*base, "--categories", "carpet,grid", "--seed", "1"]) == 0
    assert "wrote 47 images" in capsys.readouterr().out
    assert main([*base, "--holdout", "4"]) == 2
    assert "--holdout: the field protocol holds out no val set" in capsys.readouterr().err
    # the default categories are the five textures; this tree lacks leather, tile and wood
    assert main(base) == 2
    assert "leather: expected the MVTec AD layout" in capsys.readouterr().err
    assert TEXTURE_CATEGORIES == ("carpet", "grid", "leather", "tile", "wood")


def test_field_protocol_names_a_missing_mask_and_a_too_small_type(tmp_path):
    root = _mvtec(tmp_path / "m1", skip_mask="grid/bent/003")
    with pytest.raises(DataError, match=r"ground_truth/bent/003_mask\.png: missing"):
        _import(root, tmp_path / "x.parquet")
    root = _mvtec(tmp_path / "m2", types={"carpet": {"cut": 1}}, normals={"carpet": (4, 1)})
    with pytest.raises(DataError, match="defect type 'cut'.* has 1 anomaly image"):
        _import(root, tmp_path / "x.parquet", categories=("carpet",))
    assert not (tmp_path / "x.parquet").exists()  # nothing half-written


MVTEC_PRESETS = ("mvtec_textures", "mvtec_carpet", "mvtec_leather", "mvtec_tile", "mvtec_wood")


@pytest.mark.parametrize("name", MVTEC_PRESETS)
def test_every_mvtec_preset_resolves_on_the_paper_settings(name):
    paper = load_config("paper")
    cfg = load_config(name)
    assert cfg.preset == name
    category = name.removeprefix("mvtec_")
    assert cfg.data.path == f"data/mvtec/{category}.parquet"
    assert (
        cfg.model == paper.model and cfg.train == paper.train and cfg.loss == paper.loss
    )  # the paper's model
    assert cfg.evaluation.images_per_product_per_defect == 1000
    assert cfg.evaluation.removal_split == "test"  # no val split under the field protocol
    assert cfg.evaluation.reference_split == "gan_train"  # the 1/3 training anomalies, never the test set
    assert cfg.study.gpus_per_trial == 1 and cfg.study.seeds == (0, 1, 2)


def test_the_four_category_presets_are_the_papers_four_textures():
    presets = {p.stem for p in (REPO / "experiments" / "presets").glob("mvtec_*.yaml")}
    assert presets == set(MVTEC_PRESETS)
    # the paper (Appendix E.4) picks carpet, leather, tile and wood; grid joins only the all-textures preset
    assert {p.removeprefix("mvtec_") for p in presets} - {"textures"} == set(TEXTURE_CATEGORIES) - {"grid"}
