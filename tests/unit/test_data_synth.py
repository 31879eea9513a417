"""The embedded benchmark: deterministic, SDI-like counts, exact masks and clean backgrounds."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dtgan.cli.main import main
from dtgan.data.parquet_io import Rows, read_info, read_vocab, write_dataset
from dtgan.data.synth import plan_benchmark, synthesize_benchmark
from dtgan.data.vocab import Vocab
from dtgan.errors import DataError

SIZE = 32
SCALE = 0.05


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("synth") / "benchmark.parquet")
    synthesize_benchmark(path, size=SIZE, scale=SCALE, seed=3)
    return path


def test_same_seed_gives_identical_rows_and_other_seed_differs(benchmark, tmp_path):
    again = str(tmp_path / "again.parquet")
    other = str(tmp_path / "other.parquet")
    synthesize_benchmark(again, size=SIZE, scale=SCALE, seed=3, threads=1)  # thread count must not matter
    synthesize_benchmark(other, size=SIZE, scale=SCALE, seed=4)
    assert pq.read_table(benchmark).equals(pq.read_table(again))
    assert pq.read_table(benchmark)["image"] != pq.read_table(other)["image"]


def test_counts_per_cell_follow_the_scaled_sdi_tables(benchmark):
    table = pq.read_table(benchmark).to_pandas()
    counts = table.groupby(["product", "defect", "split"]).size().to_dict()
    # SDI x 0.05: normal 700 -> 35 gan_train, 5500 -> 275 gan_holdout; held out max(10, 2.5) -> 3 val + 7 test.
    assert counts[("brushed", "normal", "gan_train")] == 35
    assert counts[("brushed", "normal", "gan_holdout")] == 275
    assert counts[("brushed", "scratch", "gan_train")] == round(290 * SCALE)  # product A's scratches
    assert counts[("cast", "spot", "gan_train")] == round(620 * SCALE)  # product B's spots
    assert counts[("brushed", "spot", "gan_train")] == 4  # 58 x 0.05 = 2.9, floored up to 4
    for product in ("brushed", "cast", "woven"):
        for defect in ("normal", "scratch", "spot"):
            assert counts[(product, defect, "val")] == 3 and counts[(product, defect, "test")] == 7
    # The unseen combination: woven spots only in val/test, never in GAN training.
    assert ("woven", "spot", "gan_train") not in counts
    assert read_info(benchmark)["unseen_cells"] == [["woven", "spot"]]
    assert len(table) == sum(
        cell.total for cell in plan_benchmark(["brushed", "cast", "woven"], SCALE).values()
    )
    assert table["id"].is_unique and set(table["source"]) == {"synthetic"}


def test_vocab_in_metadata_has_normal_first_and_sorted_labels(benchmark):
    assert read_vocab(benchmark) == Vocab(("brushed", "cast", "woven"), ("normal", "scratch", "spot"))


def test_defect_pixels_differ_from_the_clean_background_only_inside_the_mask(benchmark):
    table = pq.read_table(benchmark).to_pandas()
    defective = table[table["defect"] != "normal"]
    changed_in_mask = []
    for _, row in defective.iterrows():
        image, clean, mask = _png(row["image"]), _png(row["clean"]), _png(row["mask"]) > 0
        assert image.shape == clean.shape == mask.shape == (SIZE, SIZE)
        changed = image != clean
        assert mask.any(), row["id"]
        assert not (changed & ~mask).any(), f"{row['id']} changed outside its mask"
        changed_in_mask.append(changed[mask].mean())
    # The mask is tight: most mask pixels visibly changed (the rest are faint tails rounded away).
    assert np.mean(changed_in_mask) > 0.6


def test_normal_rows_have_an_empty_mask_and_no_clean_image(benchmark):
    table = pq.read_table(benchmark).to_pandas()
    normal = table[table["defect"] == "normal"]
    assert normal["clean"].isna().all()
    assert all(not _png(mask).any() for mask in normal["mask"].head(20))


def test_products_differ_in_texture(benchmark):
    """The products' textures have clearly different contrast (std of gray values)."""
    table = pq.read_table(benchmark).to_pandas()
    stats = {}
    for product in ("brushed", "cast", "woven"):
        images = np.stack(
            [_png(b) for b in table[(table["product"] == product) & (table["defect"] == "normal")]["image"]]
        )
        stats[product] = images.astype(float).std(axis=(1, 2)).mean()
    assert len({round(s) for s in stats.values()}) == 3, stats


def test_size_and_products_options(tmp_path):
    path = str(tmp_path / "b.parquet")
    synthesize_benchmark(path, size=48, scale=0.01, products="turned,cast")
    table = pq.read_table(path).to_pandas()
    assert set(table["product"]) == {"cast", "turned"}
    assert _png(table["image"].iloc[0]).shape == (48, 48)
    assert read_info(path)["unseen_cells"] == [["turned", "spot"]]  # the last product in registry order
    with pytest.raises(DataError, match="unknown product"):
        synthesize_benchmark(path, products="marble")


def test_cli_synth_writes_benchmark_into_the_out_folder(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--size", "32", "--scale", "0.02"]) == 0
    assert "images/s" in capsys.readouterr().out
    assert (tmp_path / "d" / "benchmark.parquet").is_file()
    assert main(["data", "describe", str(tmp_path / "d" / "benchmark.parquet")]) == 0
    out = capsys.readouterr().out
    assert "[gan_train]" in out and "woven" in out


def test_a_rejected_write_leaves_no_file(tmp_path):
    rows = Rows.empty()
    for _ in range(2):  # duplicate ids
        rows.append(id="x", product="a", defect="normal", split="gan_train", source="real", image=b"")
    with pytest.raises(DataError, match="ids are not unique"):
        write_dataset(str(tmp_path / "x.parquet"), rows, Vocab(("a",), ("normal",)))
    assert list(tmp_path.iterdir()) == []


def test_defect_boldness_widens_and_strengthens_defects_on_the_same_backgrounds():
    from dtgan.data.synth import render_chunk

    def decode_png(data: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)))

    def stats(boldness):
        rows = render_chunk(0, "cast", "scratch", 0, 24, 64, defect_boldness=boldness)
        masks = np.stack([decode_png(m) for _, m, _ in rows]) > 0
        change = np.stack([np.abs(decode_png(i).astype(int) - decode_png(c).astype(int)) for i, _, c in rows])
        return masks.mean(), change[masks].mean(), [c for _, _, c in rows]

    area1, contrast1, clean1 = stats(1.0)
    area2, contrast2, clean2 = stats(2.0)
    assert clean1 == clean2  # the same random draws: only the defects change
    assert area2 > 1.6 * area1 and contrast2 > 1.4 * contrast1


def test_defect_boldness_out_of_range_is_one_line(tmp_path):
    from dtgan.errors import DataError

    with pytest.raises(DataError, match="--defect-boldness 20"):
        synthesize_benchmark(str(tmp_path / "b.parquet"), size=32, scale=0.02, defect_boldness=20)
