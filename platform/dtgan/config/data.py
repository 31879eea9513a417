"""Config of the training data: where the Parquet data set is and how images are sampled and augmented."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dtgan.config.base import Section


class DataConfig(Section):
    """The data set and the StarGAN v2 training transforms (docs/model.md#data-pipeline, docs/model.md#a12, docs/model.md#a13)."""

    path: str = Field(
        "data/synthetic/benchmark.parquet",
        description="Parquet data set (local path or pyarrow filesystem URI such as s3://bucket/ds.parquet)",
    )
    random_resized_crop_prob: float = Field(
        0.5, ge=0.0, le=1.0, description="probability of StarGAN v2's random-resized crop (docs/model.md#a12)"
    )
    crop_scale_min: float = Field(0.8, gt=0.0, le=1.0, description="smallest area fraction of the crop")
    crop_ratio_min: float = Field(0.9, gt=0.0, le=1.0, description="smallest aspect ratio of the crop")
    crop_ratio_max: float = Field(1.1, ge=1.0, description="largest aspect ratio of the crop")
    hflip: bool = Field(True, description="random horizontal flip")
    balance: Literal["defect", "product_defect"] = Field(
        "defect",
        description="class balancing of the samplers: on defect labels (StarGAN) or product x defect (docs/model.md#a13)",
    )
    loader_workers: int = Field(
        0, ge=0, description="DataLoader worker processes (0 = in the training process)"
    )

    @model_validator(mode="after")
    def _crop_ratio_ordered(self) -> DataConfig:
        if self.crop_ratio_min > self.crop_ratio_max:
            raise ValueError("crop_ratio_min must not exceed crop_ratio_max")
        return self
