"""A second embedded data set: new textures and defect shapes chosen with --products/--defects, while the
default data set keeps rendering exactly the pixels it rendered before they were added."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.defects import DEFECTS
from dtgan.data.describe import describe
from dtgan.data.parquet_io import read_info, read_vocab
from dtgan.data.synth import (
    SDI_GAN_TRAIN,
    plan_benchmark,
    render_chunk,
    resolve_defects,
    synthesize_benchmark,
)
from dtgan.data.textures import TEXTURES
from dtgan.data.vocab import Vocab
from dtgan.errors import DataError

NEW_TEXTURES = ("knurled", "coated", "grained")
NEW_DEFECTS = ("crack", "stain", "dent")
# sha256 prefixes of the decoded pixels, computed with the code before the new textures and defects were
# added (commit 4cf176a): render_chunk(7, product, defect, 1, 5, 40, boldness) over the old products and
# defects, and synthesize_benchmark(size=32, scale=0.02, seed=5) row by row.
OLD_CHUNKS_SHA256 = "87beff2e8cd951c0"
OLD_DATASET_SHA256 = "11d3e0d46109d5c1"
OLD_DATASET_ROWS = 492


def _pixels(data: bytes | None) -> bytes:
    return b"" if data is None else np.asarray(Image.open(io.BytesIO(data))).tobytes()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_old_products_and_defects_render_the_same_pixels_as_before():
    digest = hashlib.sha256()
    for product in ("brushed", "cast", "woven", "turned"):
        for defect in ("normal", "scratch", "spot"):
            for boldness in (1.0,) if defect == "normal" else (1.0, 2.0):
                for image, mask, clean in render_chunk(
                    7, product, defect, 1, 5, 40, defect_boldness=boldness
                ):
                    digest.update(_pixels(image) + _pixels(mask) + _pixels(clean))
    assert digest.hexdigest()[:16] == OLD_CHUNKS_SHA256


def test_default_data_set_is_unchanged_row_by_row(tmp_path):
    path = str(tmp_path / "b.parquet")
    synthesize_benchmark(path, size=32, scale=0.02, seed=5)
    rows = pq.read_table(path).to_pylist()
    digest = hashlib.sha256()
    for r in rows:
        digest.update(
            "|".join((r["id"], r["product"], r["defect"], r["split"])).encode()
            + _pixels(r["image"])
            + _pixels(r["mask"])
            + _pixels(r["clean"])
        )
    assert (digest.hexdigest()[:16], len(rows)) == (OLD_DATASET_SHA256, OLD_DATASET_ROWS)
    # Only the chosen defects are in the vocabulary, and the info records the choice.
    assert read_vocab(path) == Vocab(("brushed", "cast", "woven"), ("normal", "scratch", "spot"))
    info = read_info(path)
    assert info["products"] == ["brushed", "cast", "woven"] and info["defects"] == ["scratch", "spot"]


def test_registries_append_the_new_names_after_the_old_ones():
    assert list(TEXTURES)[:4] == ["brushed", "cast", "woven", "turned"]
    assert list(DEFECTS)[:2] == ["scratch", "spot"]
    assert set(NEW_TEXTURES) <= set(TEXTURES) and set(NEW_DEFECTS) <= set(DEFECTS)


@pytest.mark.parametrize("name", NEW_TEXTURES)
def test_new_textures_are_float32_images_in_the_mid_range_with_structure(name):
    surface = TEXTURES[name](np.random.default_rng(1), 6, 64)
    assert surface.shape == (6, 64, 64) and surface.dtype == np.float32
    low, high = np.percentile(surface, [1, 99])
    assert 0.05 < low and high < 0.95, (low, high)
    assert (surface.std(axis=(1, 2)) > 0.02).all()  # a texture, not a flat gray
    assert not np.allclose(surface[0], surface[1])  # per-image variation
    again = TEXTURES[name](np.random.default_rng(1), 6, 64)
    assert np.array_equal(surface, again)


@pytest.mark.parametrize("name", NEW_DEFECTS)
def test_new_defects_are_local_and_grow_with_boldness(name):
    def render(boldness):
        return DEFECTS[name](np.random.default_rng(4), 24, 96, boldness)

    delta1, delta2 = render(1.0), render(2.0)
    assert delta1.shape == (24, 96, 96) and delta1.dtype == np.float32
    mask1, mask2 = delta1 != 0, delta2 != 0
    assert mask1.any(axis=(1, 2)).all()  # every image has its defect
    assert mask1.mean() < 0.3  # a defect, not a new background
    assert np.abs(delta1).max() <= 0.6 + 1e-6 and np.abs(delta2).max() <= 0.6 + 1e-6
    assert mask2.mean() > 1.3 * mask1.mean()
    assert np.abs(delta2[mask2]).mean() > 1.3 * np.abs(delta1[mask1]).mean()


def test_defect_shapes_differ_in_character():
    areas = {name: (DEFECTS[name](np.random.default_rng(5), 32, 64, 1.0) != 0).mean() for name in DEFECTS}
    assert areas["crack"] < 0.5 * areas["spot"]  # thin lines
    assert areas["stain"] > 3 * areas["spot"]  # large blotches
    dent = DEFECTS["dent"](np.random.default_rng(5), 32, 64, 1.0)
    brighter_and_darker = [(d > 0.02).any() and (d < -0.02).any() for d in dent]
    assert np.mean(brighter_and_darker) > 0.9  # a shaded bowl: a lit and a shadowed flank


@pytest.fixture(scope="module")
def second_set(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("second") / "benchmark.parquet")
    synthesize_benchmark(
        path, size=32, scale=0.02, seed=3, products="turned,knurled,coated", defects="crack,stain"
    )
    return path


def test_second_set_changes_pixels_only_inside_the_masks(second_set):
    table = pq.read_table(second_set).to_pandas()
    defective = table[table["defect"] != "normal"]
    assert set(defective["defect"]) == {"crack", "stain"}
    for _, row in defective.iterrows():
        image, clean, mask = _decode(row["image"]), _decode(row["clean"]), _decode(row["mask"]) > 0
        assert mask.any(), row["id"]
        assert not ((image != clean) & ~mask).any(), row["id"]


def test_second_set_is_deterministic(second_set, tmp_path):
    again = str(tmp_path / "again.parquet")
    synthesize_benchmark(
        again, size=32, scale=0.02, seed=3, products="turned,knurled,coated", defects="crack,stain", threads=1
    )
    assert pq.read_table(second_set).equals(pq.read_table(again))


def test_second_set_vocab_info_counts_and_unseen_cell(second_set):
    assert read_vocab(second_set) == Vocab(("coated", "knurled", "turned"), ("normal", "crack", "stain"))
    info = read_info(second_set)
    assert info["products"] == ["turned", "knurled", "coated"]  # registry order
    assert info["defects"] == ["crack", "stain"]
    assert info["unseen_cells"] == [["coated", "stain"]]  # the last product's last chosen defect
    counts = pq.read_table(second_set).to_pandas().groupby(["product", "defect", "split"]).size().to_dict()
    # crack takes SDI's scratch counts, stain its spot counts (turned = product A, knurled = B).
    assert counts[("turned", "crack", "gan_train")] == max(4, round(SDI_GAN_TRAIN["scratch"][0] * 0.02))
    assert counts[("knurled", "stain", "gan_train")] == round(SDI_GAN_TRAIN["spot"][1] * 0.02)
    assert ("coated", "stain", "gan_train") not in counts and counts[("coated", "stain", "test")] == 7
    text = describe(second_set)
    assert "defects: ['crack', 'stain']" in text and "products: ['turned', 'knurled', 'coated']" in text


def test_the_unseen_cell_follows_the_order_of_the_defects():
    plan = plan_benchmark(["cast", "woven"], 0.1, resolve_defects("stain,crack,dent"))
    assert [key for key, cell in plan.items() if cell.gan_train == 0] == [("woven", "dent")]
    assert plan[("cast", "stain")].gan_train == round(SDI_GAN_TRAIN["scratch"][0] * 0.1)
    assert plan[("cast", "crack")].gan_train == round(SDI_GAN_TRAIN["spot"][0] * 0.1)
    assert plan[("cast", "dent")].gan_train == round(SDI_GAN_TRAIN["scratch"][0] * 0.1)  # cycled
    assert resolve_defects(None) == ["scratch", "spot"]


@pytest.mark.parametrize("bad", ["crack,blob", "crack,crack", ","])
def test_cli_defects_rejects_unknown_or_repeated_names_in_one_line(tmp_path, capsys, bad):
    out = tmp_path / "d"
    code = main(["data", "synth", "--out", str(out), "--size", "32", "--scale", "0.02", "--defects", bad])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "--defects" in err and "crack, stain, dent" in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing written
    with pytest.raises(DataError, match="choose from scratch, spot"):
        resolve_defects(bad)
