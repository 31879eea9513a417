"""Config of the networks: sizes, the ablation ladder (a)-(g), its toggles, and the ambiguity switches of docs/model.md#ambiguities."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import Field, model_validator

from dtgan.config.base import Section

LADDER_STEPS = ("a", "b", "c", "d", "e", "f", "g")
# Each ladder step turns on one toggle on top of all earlier steps (docs/model.md#ablation-ladder).
TOGGLE_OF_STEP = {
    "b": "style_content",
    "c": "fg_classifier",
    "d": "bg_classifier",
    "e": "separate_decoders",
    "f": "anchor_normal",
    "g": "mapping_noise",
}
TOGGLES = tuple(TOGGLE_OF_STEP.values())
# Toggles that only make sense with the FG/BG content split of step (b).
NEEDS_STYLE_CONTENT = ("separate_decoders", "anchor_normal", "mapping_noise")


class Toggles(NamedTuple):
    """The resolved ablation toggles; step (a) is StarGAN v2 with all of them off."""

    style_content: bool
    fg_classifier: bool
    bg_classifier: bool
    separate_decoders: bool
    anchor_normal: bool
    mapping_noise: bool


def toggles_of_step(step: str) -> Toggles:
    """The toggles that ladder step ``step`` turns on cumulatively."""
    upto = LADDER_STEPS.index(step)
    on = {TOGGLE_OF_STEP[s] for s in LADDER_STEPS[1 : upto + 1]}
    return Toggles(**{t: t in on for t in TOGGLES})


class ModelConfig(Section):
    """Network sizes and DT-GAN's ablation toggles. Defaults are the paper configuration at 128 px."""

    img_size: int = Field(128, ge=16, le=1024, description="image side in pixels (a power of two)")
    stem_dim: int | None = Field(
        None, ge=4, description="width of the first conv of G, E and D; null = StarGAN's 2**14 // img_size"
    )
    max_conv_dim: int = Field(512, ge=8, description="widest feature map of G, E and D")
    latent_dim: int = Field(16, ge=1, description="dimension of z")
    style_dim: int = Field(64, ge=1, description="dimension of the style code s")
    content_dim: int = Field(
        64,
        ge=1,
        description="channels of the FG content c at G's bottleneck; BG gets max_conv_dim - content_dim",
    )
    mapping_hidden_dim: int = Field(512, ge=4, description="width of the mapping network's MLP")
    ablation: Literal["a", "b", "c", "d", "e", "f", "g"] = Field(
        "g",
        description="ablation ladder step (a)=StarGAN v2 ... (g)=full DT-GAN; explicit toggles override it",
    )
    style_content: bool | None = Field(None, description="content branches in M and E, FG slice replaced (b)")
    fg_classifier: bool | None = Field(None, description="FG classifier head in D and its losses (c)")
    bg_classifier: bool | None = Field(
        None, description="BG (product) classifier head in D and its losses (d)"
    )
    separate_decoders: bool | None = Field(None, description="separate BG (IN) and FG (AdaIN) decoders (e)")
    anchor_normal: bool | None = Field(None, description="content of the normal domain forced to zero (f)")
    mapping_noise: bool | None = Field(None, description="per-pixel noise in M's content branch (g)")
    content_heads: Literal["full", "last"] = Field(
        "full",
        description="docs/model.md#a6: a full copy of M's content branch per domain, or a shared trunk with a K-way last conv",
    )
    content_injection: Literal["replace", "concat"] = Field(
        "replace",
        description="docs/model.md#a7: c replaces G's FG slice, or is concatenated to all channels (unified decoder only)",
    )
    stem_kernel_size: Literal[1, 3] = Field(
        3, description="docs/model.md#a4: kernel of the first conv of G, E and D"
    )
    fusion: Literal["norm_act_conv", "conv"] = Field(
        "norm_act_conv",
        description="docs/model.md#a5: fusion of the separate decoders: IN+LReLU+1x1 conv, or the 1x1 conv alone",
    )
    noise_strength_init: float = Field(
        0.1,
        ge=0.0,
        description="docs/model.md#a9: initial learned per-channel noise strength (StyleGAN uses 0)",
    )
    fg_classifier_dim: int | None = Field(
        None,
        ge=1,
        description="docs/model.md#a11: width of the FG classifier's residual blocks; null = content_dim * K",
    )
    anchor_in_discriminator: bool = Field(
        False, description="docs/model.md#a17: also zero D's content head for normal (off by default)"
    )

    @property
    def toggles(self) -> Toggles:
        """The ladder step's toggles with every explicitly set toggle applied on top."""
        base = toggles_of_step(self.ablation)._asdict()
        for name in TOGGLES:
            value = getattr(self, name)
            if value is not None:
                base[name] = value
        return Toggles(**base)

    @property
    def resolved_stem_dim(self) -> int:
        return self.stem_dim if self.stem_dim is not None else max(2**14 // self.img_size, 4)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.img_size & (self.img_size - 1):
            raise ValueError(f"img_size must be a power of two, got {self.img_size}")
        if self.content_dim >= self.max_conv_dim:
            raise ValueError(
                f"content_dim ({self.content_dim}) must be smaller than max_conv_dim ({self.max_conv_dim})"
            )
        toggles = self.toggles
        if not toggles.style_content:
            for name in NEEDS_STYLE_CONTENT:
                if getattr(toggles, name):
                    raise ValueError(
                        f"{name} needs style_content (the content branches of step b); "
                        f"set style_content=true or {name}=false"
                    )
        if self.content_injection == "concat" and toggles.separate_decoders:
            raise ValueError(
                "content_injection=concat only applies to the unified decoder (separate_decoders=false)"
            )
        return self
