"""The whole resolved configuration of a run: one section per component."""

from __future__ import annotations

from pydantic import Field

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
