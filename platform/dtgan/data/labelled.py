"""Decoded rows of a data set, the one labelled-image container: uint8 images, defect ``y``, product ``p``."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelledImages:
    """Images with defect labels ``y`` and product labels ``p``; read from a data set, the rows' ids too.

    The evaluation's references and sources and the classifier study's splits are all one of these.
    """

    images: torch.Tensor  # (N, C, H, W) uint8
    y: torch.Tensor  # (N,) long, defect index (0 = normal)
    p: torch.Tensor  # (N,) long, product index
    ids: tuple[str, ...] | None = None  # the rows' ``id`` column; None where the rows are not data-set rows

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.y.shape != (n,) or self.p.shape != (n,):
            raise ValueError(
                f"y and p must have shape ({n},), got {tuple(self.y.shape)} and {tuple(self.p.shape)}"
            )
        if self.ids is not None and len(self.ids) != n:
            raise ValueError(f"ids must have {n} entries, got {len(self.ids)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> LabelledImages:
        """The rows ``index`` (N',) long, in that order."""
        ids = None if self.ids is None else tuple(self.ids[i] for i in index.tolist())
        return LabelledImages(self.images[index], self.y[index], self.p[index], ids)

    def where(self, mask: torch.Tensor) -> LabelledImages:
        """The rows where ``mask`` (N,) bool is true."""
        return self.subset(mask.nonzero().squeeze(1))

    def to_dict(self) -> dict:
        """The tensors (and ids, when kept) for ``torch.save``."""
        out: dict = {"images": self.images, "y": self.y, "p": self.p}
        if self.ids is not None:
            out["ids"] = list(self.ids)
        return out

    @staticmethod
    def from_dict(d: dict) -> LabelledImages:
        ids = d.get("ids")
        return LabelledImages(d["images"], d["y"], d["p"], None if ids is None else tuple(ids))

    @staticmethod
    def empty_like(other: LabelledImages) -> LabelledImages:
        return other.subset(torch.zeros(0, dtype=torch.long))
