"""Config of the downstream defect-classifier study (paper §4.2, Appendix B, spec §4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dtgan.config.base import Section

ARM_NAMES = ("no_aug", "trad_aug", "latent", "reference", "mix")
SYNTHETIC_ARMS = ("latent", "reference", "mix")
ALL = "all"

Arm = Literal["no_aug", "trad_aug", "latent", "reference", "mix"]


class DownstreamConfig(Section):
    """Classifier, recipe, study axes and augmentation of the augmentation study; defaults are the paper's."""

    # --- classifier -------------------------------------------------------------------------------------
    backbone: str = Field(
        "resnet50", min_length=1, description="timm model name (paper: resnet50, efficientnet_b4)"
    )
    img_size: int = Field(128, ge=16, le=1024, description="classifier input side in pixels")
    in_chans: Literal[1, 3] = Field(
        3, description="classifier input channels (gray images are replicated to 3)"
    )
    pretrained_paths: dict[str, str] = Field(
        default_factory=dict,
        description="backbone name -> local ImageNet weights file (timm pretrained_cfg_overlay); "
        "a backbone without an entry trains from scratch unless hub_download",
    )
    hub_download: bool = Field(
        False,
        description="opt in to downloading timm weights from the Hugging Face hub (else HF_HUB_OFFLINE=1)",
    )
    domain_head_layers: Literal["auto", 2, 3] = Field(
        "auto",
        description="layers of the real-vs-synthetic MLP behind the GRL; auto = 3 for EfficientNet, else 2",
    )
    domain_head_hidden_dim: int = Field(1024, ge=1, description="width of the domain MLP's hidden layers")
    grl_coefficient: float = Field(
        1.0,
        ge=0.0,
        description="gradient reversal scale: the backbone receives -coefficient x the domain gradient",
    )
    # --- recipe (Appendix B) ----------------------------------------------------------------------------
    epochs: int = Field(100, ge=1, description="training epochs (one epoch = one pass over the balanced set)")
    batch_size: int = Field(
        256, ge=2, description="training batch size (paper: 256 ResNet-50, 128 EfficientNet-b4)"
    )
    learning_rate: float = Field(1e-3, gt=0.0, description="SGD initial learning rate")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = Field(1e-4, ge=0.0, description="SGD weight decay")
    plateau_factor: float = Field(
        0.1, gt=0.0, lt=1.0, description="learning-rate factor when val loss plateaus"
    )
    plateau_patience_epochs: int = Field(
        5, ge=0, description="epochs without val-loss improvement before a cut"
    )
    selection_metric: Literal["val_loss", "val_error"] = Field(
        "val_loss", description="the epoch whose weights are tested: lowest validation loss or error"
    )
    # --- traditional augmentation -----------------------------------------------------------------------
    aug_hflip_prob: float = Field(0.5, ge=0.0, le=1.0, description="probability of a horizontal flip")
    aug_jitter_fraction: float = Field(
        0.05, ge=0.0, le=0.5, description="largest random translation, as a fraction of the image side"
    )
    aug_brightness: float = Field(
        0.2, ge=0.0, le=1.0, description="lighting: brightness factor drawn in 1 +- this"
    )
    aug_contrast: float = Field(
        0.2, ge=0.0, le=1.0, description="lighting: contrast factor drawn in 1 +- this"
    )
    # --- study axes -------------------------------------------------------------------------------------
    arms: tuple[Arm, ...] = Field(ARM_NAMES, min_length=1, description="study arms")
    normal_images_per_product: tuple[int, ...] = Field(
        (4000,),
        min_length=1,
        description="real normal training images per product, one study row each "
        "(paper: 1500, 2200, 4000, 6200)",
    )
    products: tuple[str, ...] = Field(
        (ALL,),
        min_length=1,
        description="classifier scopes: 'all' = products pooled, or single product names",
    )
    defect_sources: tuple[str, ...] = Field(
        (ALL,),
        min_length=1,
        description="cross-domain arms: reference defects from 'all' products or one "
        "(vA, vB, ...); applies to the reference and mix arms",
    )
    limit_defects_per_type: dict[str, int] = Field(
        default_factory=dict,
        description="data-limited subset: product -> real training defects kept per defect type "
        "(paper 20A: {A: 20}; train the GAN on the same subset)",
    )
    synthesis_sources_per_product: int = Field(
        500,
        ge=0,
        description="gan_holdout normals per product reserved as synthesis sources (never classifier "
        "training images); reused round-robin when more synthetic images are needed",
    )
    num_seeds: int = Field(5, ge=1, description="seeds per study cell (paper: 5)")
    seed: int = Field(
        0, ge=0, description="first seed; cell seeds are seed, seed+1, ...; also seeds data choices"
    )
    synthesis_batch_size: int = Field(
        64, ge=1, description="generator batch size when building synthetic sets"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")

    @field_validator("normal_images_per_product")
    @classmethod
    def _sizes_positive_unique(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 1 for n in v) or len(set(v)) != len(v):
            raise ValueError("normal_images_per_product must be distinct positive counts")
        return v

    @field_validator("arms", "products", "defect_sources")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v) or any(not s for s in v):
            raise ValueError("entries must be distinct and non-empty")
        return v

    @field_validator("limit_defects_per_type")
    @classmethod
    def _limits_positive(cls, v: dict[str, int]) -> dict[str, int]:
        if any(n < 1 for n in v.values()):
            raise ValueError("limit_defects_per_type counts must be >= 1")
        return v

    @model_validator(mode="after")
    def _sources_for_synthetic_arms(self) -> DownstreamConfig:
        if self.synthesis_sources_per_product == 0 and any(a in SYNTHETIC_ARMS for a in self.arms):
            raise ValueError(
                "synthesis_sources_per_product must be >= 1 when arms include latent, reference or mix"
            )
        return self

    @property
    def synthetic_arms(self) -> tuple[str, ...]:
        return tuple(a for a in self.arms if a in SYNTHETIC_ARMS)

    @property
    def resolved_domain_head_layers(self) -> int:
        """2 for ResNet-like backbones, 3 for EfficientNet (Appendix B, Figures 8 and 9)."""
        if self.domain_head_layers != "auto":
            return int(self.domain_head_layers)
        return 3 if self.backbone.startswith(("efficientnet", "tf_efficientnet")) else 2
