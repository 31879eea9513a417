"""The whole resolved configuration of a run: one section per component."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import Field, model_validator

from dtgan.config.base import Section
from dtgan.config.crop_paste import CropPasteConfig
from dtgan.config.data import DataConfig
from dtgan.config.distributed import DistributedConfig
from dtgan.config.downstream import DownstreamConfig
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.loss import LossConfig
from dtgan.config.model import ModelConfig
from dtgan.config.optim import OptimConfig
from dtgan.config.study import StudyConfig
from dtgan.config.tracking import TrackingConfig
from dtgan.config.train import TrainConfig

MOVED_PERFORMANCE_WARNING = (
    "distributed.performance is deprecated: the same options are train.performance (bf16_autocast, "
    "channels_last, fused_adam, compile)"
)


class DTGANConfig(Section):
    """Everything a run needs; each component receives only its own section."""

    preset: str | None = Field(None, description="name of the preset the config was resolved from")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    crop_paste: CropPasteConfig = Field(default_factory=CropPasteConfig)
    study: StudyConfig = Field(default_factory=StudyConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """``distributed.performance`` (older versions; still in saved configs) is read as ``train.performance``."""
        if not isinstance(data, dict) or not isinstance(data.get("distributed"), dict):
            return data
        distributed = dict(data["distributed"])
        if "performance" not in distributed or not isinstance(data.get("train", {}), dict):
            return data
        train = dict(data.get("train", {}))
        if "performance" in train:
            raise ValueError(
                "distributed.performance and train.performance are both set; "
                "the options moved to train.performance: write them there only"
            )
        warnings.warn(MOVED_PERFORMANCE_WARNING, FutureWarning, stacklevel=2)
        train["performance"] = distributed.pop("performance")
        return {**data, "distributed": distributed, "train": train}
