"""Config of the downstream defect-classifier study (paper §4.2, Appendix B, docs/model.md#evaluation-protocol)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dtgan.config.base import Section
from dtgan.keys import SCOPE_ALL

CROP_PASTE_ARM = "crop_paste"  # synthetic images by Crop&Paste of real masked defects: no checkpoint
CROP_PASTE_MIX_ARM = "crop_paste_mix"  # half Crop&Paste, half the generator's mix: needs a checkpoint
GENERATOR_ARMS = ("latent", "reference", "mix", CROP_PASTE_MIX_ARM)  # images from the GAN: need a checkpoint
SYNTHETIC_ARMS = (*GENERATOR_ARMS, CROP_PASTE_ARM)  # balanced with synthetic images (and the domain head)
DEFAULT_ARMS = ("no_aug", "trad_aug", "latent", "reference", "mix")  # the paper's Table 8 columns
AUTO = "auto"
# ImageNet weights: 'imagenet' = required (stop before any work without them), 'auto' = when they can be found,
# else random initialisation (labelled 'scratch'), 'scratch' = random initialisation.
Weights = Literal["imagenet", "auto", "scratch"]
EFFICIENTNET_PREFIXES = ("efficientnet", "tf_efficientnet")
# Appendix B: batch 256 for ResNet-50, "the batch size is reduced to 128" for EfficientNet-b4.
PAPER_BATCH_SIZE, PAPER_EFFICIENTNET_BATCH_SIZE = 256, 128

Arm = Literal["no_aug", "trad_aug", "latent", "reference", "mix", "crop_paste", "crop_paste_mix"]
NO_FILTER, DEFECT_CLASSIFIER_FILTER = "none", "defect_classifier"


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
    weights: Weights = Field(
        "auto",
        description="initial weights: imagenet = ImageNet weights required (paper; a pretrained_paths file, the "
        "timm/Hugging Face cache, or hub_download), stop before any work without them; auto = ImageNet where "
        "found, else random init ('scratch'); scratch = random init",
    )
    pretrained_paths: dict[str, str] = Field(
        default_factory=dict,
        description="backbone name -> local ImageNet weights file (timm pretrained_cfg_overlay); "
        "without an entry the timm/Hugging Face cache is used, then hub_download",
    )
    hub_download: bool = Field(
        False,
        description="opt in to downloading timm weights from the Hugging Face hub (clusters; "
        "else HF_HUB_OFFLINE=1)",
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
    batch_size: int | Literal["auto"] = Field(
        AUTO,
        description="training batch size; auto = the paper's: 128 for EfficientNet, else 256 (ResNet-50)",
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
    arms: tuple[Arm, ...] = Field(
        DEFAULT_ARMS,
        min_length=1,
        description="study arms: no_aug, trad_aug, latent, reference, mix (the generator's), crop_paste "
        "(the cheapest alternative: real masked defects pasted onto the synthesis sources) and crop_paste_mix "
        "(half of the synthetic images from crop_paste, half from mix, the same total)",
    )
    synthetic_share: float = Field(
        1.0,
        gt=0.0,
        le=20.0,
        description="synthetic images of the balanced arms (latent, reference, mix, crop_paste, crop_paste_mix) "
        "as a multiple of what balancing each defect class to the normal count needs: round(share x deficit) per "
        "product x defect; 1.0 = balanced (the paper's), 2.0 = twice as many, 0.5 = half",
    )
    synthetic_filter: Literal["none", "defect_classifier"] = Field(
        NO_FILTER,
        description="quality filter of the generator's images before they reach the classifier: none = every "
        "rendered image; defect_classifier = render 1/synthetic_filter_keep times as many candidates per set and "
        "keep those the data set's defect classifier (dtgan-defect-cnn, trained on real gan_train images only, "
        "the judge of defect recall) gives the highest probability of the intended defect type",
    )
    synthetic_filter_keep: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="synthetic_filter=defect_classifier: the fraction of rendered candidates kept",
    )
    normal_images_per_product: tuple[int, ...] = Field(
        (4000,),
        min_length=1,
        description="real normal training images per product, one study row each "
        "(paper: 1500, 2200, 4000, 6200)",
    )
    products: tuple[str, ...] = Field(
        (SCOPE_ALL,),
        min_length=1,
        description="classifier scopes: 'all' = products pooled, or single product names",
    )
    defect_sources: tuple[str, ...] = Field(
        (SCOPE_ALL,),
        min_length=1,
        description="cross-domain arms: reference defects from 'all' products or one "
        "(vA, vB, ...); applies to the reference and mix arms",
    )
    limit_defects_per_type: dict[str, int] = Field(
        default_factory=dict,
        description="data-limited subset: product -> real training defects kept per defect type "
        "(paper 20A: {A: 20}; train the GAN on the same subset)",
    )
    synthesis_sources: Literal["holdout", "classifier_normals"] = Field(
        "holdout",
        description="where the normals that synthesis translates come from: holdout = gan_holdout normals "
        "reserved per product (never classifier training images); classifier_normals = the study's own "
        "training normals, as the paper translates each Normal image (Appendix C; needed at N=6200 on SDI)",
    )
    synthesis_sources_per_product: int | Literal["auto"] = Field(
        AUTO,
        description="synthesis sources per product; auto = as many as the largest synthetic set of the "
        "product needs, so that each source is translated once per guidance and defect type (Appendix C: "
        "each Normal image into four defects on SDI); a number below that reuses sources round-robin",
    )
    num_seeds: int = Field(5, ge=1, description="seeds per study cell (paper: 5)")
    seed: int = Field(
        0, ge=0, description="first seed; cell seeds are seed, seed+1, ...; also seeds data choices"
    )
    synthesis_batch_size: int = Field(
        64, ge=1, description="generator batch size when building synthetic sets"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    held_out_data: str | None = Field(
        None,
        description="Parquet data set whose val and test rows replace the training data set's (same products "
        "and defects, e.g. `dtgan data synth --seed 1 --held-out-per-cell 300`): a test set large enough to "
        "tell a 2-point difference; None = the training data set's own val and test",
    )
    # --- the field's defect-type classification protocol (downstream/field_classification.py) -----------------
    protocol: Literal["study", "field_classification"] = Field(
        "study",
        description="study = the paper's augmentation study (arms x sizes); field_classification = the field's "
        "protocol: per product, a classifier of defect types trained on generated defects, tested on the real "
        "test defects, accuracy per product and averaged",
    )
    field_images_per_defect: int = Field(
        500, ge=1, description="field_classification: generated training images per product x defect type"
    )
    field_real_defects: bool = Field(
        False,
        description="field_classification: also train on the real gan_train defects (the one third); papers "
        "differ, the result records which",
    )
    field_guidance: Literal["latent", "reference"] = Field(
        "latent", description="field_classification: how the generated defects are drawn"
    )

    @field_validator("batch_size", "synthesis_sources_per_product")
    @classmethod
    def _count_or_auto(cls, v: int | str, info) -> int | str:
        low = 2 if info.field_name == "batch_size" else 1
        if v != AUTO and v < low:
            raise ValueError(f"must be 'auto' or an integer >= {low}")
        return v

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
    def _scratch_has_no_weights_file(self) -> DownstreamConfig:
        if self.weights == "scratch" and self.backbone in self.pretrained_paths:
            raise ValueError(
                f"weights=scratch but pretrained_paths names a file for {self.backbone}; "
                "set downstream.weights=imagenet (or auto) to use it, or drop the entry"
            )
        return self

    @model_validator(mode="after")
    def _filter_has_generator_images(self) -> DownstreamConfig:
        if self.synthetic_filter != NO_FILTER and not self.synthetic_arms:
            raise ValueError(
                f"synthetic_filter={self.synthetic_filter} filters the generator's images but arms "
                f"{list(self.arms)} use none; add latent, reference, mix or crop_paste_mix, or set "
                "downstream.synthetic_filter=none"
            )
        if self.synthetic_filter != NO_FILTER and self.synthetic_filter_keep == 1.0:
            raise ValueError(
                "synthetic_filter_keep=1.0 keeps every candidate (no filter); set it below 1 (e.g. 0.5) or set "
                "downstream.synthetic_filter=none"
            )
        return self

    @property
    def synthetic_arms(self) -> tuple[str, ...]:
        """The arms whose synthetic images come from the generator (they need a checkpoint)."""
        return tuple(a for a in self.arms if a in GENERATOR_ARMS)

    @property
    def balanced_arms(self) -> tuple[str, ...]:
        """Every arm balanced with synthetic images: the generator's and crop_paste."""
        return tuple(a for a in self.arms if a in SYNTHETIC_ARMS)

    @property
    def is_efficientnet(self) -> bool:
        return self.backbone.startswith(EFFICIENTNET_PREFIXES)

    @property
    def resolved_batch_size(self) -> int:
        """``batch_size``, with auto = the paper's batch for the backbone (Appendix B)."""
        if self.batch_size != AUTO:
            return int(self.batch_size)
        return PAPER_EFFICIENTNET_BATCH_SIZE if self.is_efficientnet else PAPER_BATCH_SIZE

    @property
    def resolved_domain_head_layers(self) -> int:
        """2 for ResNet-like backbones, 3 for EfficientNet (Appendix B, Figures 8 and 9)."""
        if self.domain_head_layers != "auto":
            return int(self.domain_head_layers)
        return 3 if self.is_efficientnet else 2
