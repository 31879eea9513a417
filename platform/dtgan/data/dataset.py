"""A torch Dataset over a Parquet data set: rows selected by split/product/defect, decoded once to uint8."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

from dtgan.data.codec import decode_gray, resize_gray, resize_mask
from dtgan.data.labelled import LabelledImages
from dtgan.data.parquet_io import SPLITS, read_table
from dtgan.data.transforms import Transform, plain_transform
from dtgan.errors import DataError

log = logging.getLogger(__name__)
_DECODE_THREADS = 2  # Pillow's PNG decoder releases the GIL


class DefectImageDataset(Dataset):
    """Images of selected rows as ``(x, y, p)``: x float32 (3, H, W) in [-1, 1], y defect index, p product index.

    Attributes:
        vocab: the file's label vocabulary (indices never depend on the selection).
        y, p: LongTensor (N,) of defect and product indices.
        ids: list of row ids.
        images_uint8: uint8 (N, 3, H, W), gray replicated (an expanded view of one channel: read-only).
        masks_uint8: uint8 (N, 1, H, W) 0/255, all-zero for rows without a mask; None if no row has one.
        clean_uint8: uint8 (N, 1, H, W) clean backgrounds, all-zero where ``has_clean`` is False; None if
            no row has one.
        has_clean: BoolTensor (N,) which rows have a clean background (None with ``clean_uint8``).

    ``__getitem__`` also accepts ``(index, seed)``; the samplers pass a seed per draw so that augmentation
    is reproducible. A plain int index draws from torch's global RNG.
    """

    def __init__(
        self,
        path: str,
        splits: Sequence[str] = ("gan_train",),
        img_size: int = 128,
        products: Sequence[str] | None = None,
        defects: Sequence[str] | None = None,
        transform: Transform | None = None,
    ) -> None:
        unknown = [split for split in splits if split not in SPLITS]
        if unknown or not splits:
            raise DataError(f"unknown split(s) {unknown or list(splits)}; choose from {', '.join(SPLITS)}")
        table, self.vocab = read_table(path)
        selected = pc.is_in(table["split"], pa.array(list(splits)))
        for column, names, index_of in (
            ("product", products, self.vocab.product_index),
            ("defect", defects, self.vocab.defect_index),
        ):
            if names is not None:
                for name in names:
                    index_of(name)  # raises a DataError naming an unknown label
                selected = pc.and_(selected, pc.is_in(table[column], pa.array(list(names), pa.string())))
        table = table.filter(selected)
        if table.num_rows == 0:
            raise DataError(
                f"{path}: no rows in split(s) {list(splits)} for products {products or 'all'} "
                f"and defects {defects or 'all'}"
            )
        self.path, self.img_size, self.transform = path, img_size, transform or plain_transform
        self.ids: list[str] = table["id"].to_pylist()
        self.y = torch.tensor(
            [self.vocab.defect_index(d) for d in table["defect"].to_pylist()], dtype=torch.long
        )
        self.p = torch.tensor(
            [self.vocab.product_index(p) for p in table["product"].to_pylist()], dtype=torch.long
        )
        gray = self._decode(table["image"].to_pylist(), self.ids, is_mask=False)  # (N, 1, H, W)
        self.images_uint8 = gray.expand(-1, 3, -1, -1)
        # Masks and clean backgrounds are decoded on first use: training never reads them, and decoding
        # them took about as long as decoding the images (the embedded benchmark has both on every row).
        self._optional_blobs = {"mask": table["mask"].to_pylist(), "clean": table["clean"].to_pylist()}
        self._optional: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] = {}

    def _optional_column(self, column: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if column not in self._optional:
            self._optional[column] = self._decode_optional(
                self._optional_blobs.pop(column), is_mask=column == "mask"
            )
        return self._optional[column]

    @property
    def masks_uint8(self) -> torch.Tensor | None:
        return self._optional_column("mask")[0]

    @property
    def clean_uint8(self) -> torch.Tensor | None:
        return self._optional_column("clean")[0]

    @property
    def has_clean(self) -> torch.Tensor | None:
        return self._optional_column("clean")[1]

    def _decode(self, blobs: list[bytes], ids: list[str], is_mask: bool) -> torch.Tensor:
        """Decode PNG bytes to uint8 (N, 1, img_size, img_size), resizing other sizes with one warning."""
        what = " mask" if is_mask else ""
        with ThreadPoolExecutor(_DECODE_THREADS) as pool:
            arrays = list(
                pool.map(
                    lambda item: decode_gray(item[1], f"{self.path} row {item[0]}{what}"), zip(ids, blobs)
                )
            )
        side = (self.img_size, self.img_size)
        resized = sum(array.shape != side for array in arrays)
        if resized:
            resize = resize_mask if is_mask else resize_gray
            arrays = [resize(array, self.img_size) for array in arrays]
            log.warning(
                "%s: resized %d %s to %d px",
                self.path,
                resized,
                "masks" if is_mask else "images",
                self.img_size,
            )
        return torch.from_numpy(np.stack(arrays)[:, None])

    def _decode_optional(self, blobs: list[bytes | None], is_mask: bool):
        """(uint8 (N, 1, H, W) with zeros where a row has none, BoolTensor (N,) presence), or (None, None)."""
        present = torch.tensor([blob is not None for blob in blobs], dtype=torch.bool)
        if not present.any():
            return None, None
        out = torch.zeros((len(blobs), 1, self.img_size, self.img_size), dtype=torch.uint8)
        rows = present.nonzero().flatten().tolist()
        out[rows] = self._decode([blobs[i] for i in rows], [self.ids[i] for i in rows], is_mask)
        if is_mask:
            out = torch.where(out > 0, 255, 0).to(torch.uint8)
        return out, present

    def labelled(self) -> LabelledImages:
        """Every row as :class:`~dtgan.data.labelled.LabelledImages` (``images_uint8``, ``y``, ``p``, ``ids``)."""
        return LabelledImages(self.images_uint8, self.y, self.p, tuple(str(i) for i in self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        index, generator = _index_and_generator(item)
        x = self.transform(self.images_uint8[index], generator)  # (3, H, W) float32 in [-1, 1]
        return x, int(self.y[index]), int(self.p[index])


def _index_and_generator(item: int | tuple[int, int]) -> tuple[int, torch.Generator | None]:
    if isinstance(item, tuple):
        index, seed = item
        return int(index), torch.Generator().manual_seed(int(seed))
    return int(item), None
