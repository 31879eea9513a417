"""Masks and clean backgrounds are decoded on first use, once, with the same values as an eager decode."""

import pytest
import torch

from dtgan.data.codec import decode_gray
from dtgan.data.dataset import DefectImageDataset
from dtgan.data.parquet_io import read_table
from dtgan.data.synth import synthesize_benchmark

SIZE = 32


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("lazy") / "benchmark.parquet")
    synthesize_benchmark(out, size=SIZE, scale=0.05, seed=2)
    return out


def test_masks_are_decoded_on_first_use_once_and_equal_the_stored_pngs(path):
    dataset = DefectImageDataset(path, img_size=SIZE)
    assert dataset._optional == {}  # building the dataset (as training does) decodes no mask or clean image
    masks = dataset.masks_uint8
    assert dataset.masks_uint8 is masks and set(dataset._optional) == {"mask"}
    table, _ = read_table(path)
    blobs = table.filter(table["split"].to_numpy() == "gan_train")["mask"].to_pylist()
    row = next(i for i, blob in enumerate(blobs) if blob is not None)
    expected = torch.from_numpy(decode_gray(blobs[row], "mask") > 0).to(torch.uint8) * 255
    assert torch.equal(masks[row, 0], expected)
    assert dataset.has_clean.dtype == torch.bool and dataset.clean_uint8.shape == (
        len(dataset),
        1,
        SIZE,
        SIZE,
    )
