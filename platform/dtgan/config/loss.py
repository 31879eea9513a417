"""Config of the loss weights of Eq. 8 and the loss-reading switches docs/model.md#a1, docs/model.md#a2, docs/model.md#a3, docs/model.md#a8."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dtgan.config.base import Section


class LossConfig(Section):
    """Loss weights (all 1 in the paper, Appendix B) and how ambiguous terms are read."""

    lambda_reg: float = Field(1.0, ge=0.0, description="R1 penalty on real images")
    r1_every: int = Field(
        1,
        ge=1,
        description="lazy R1 (StyleGAN2): the penalty on every r1_every-th D step (steps 0, k, 2k, ...), weighted "
        "lambda_reg * r1_every there; 1 = every step, the paper. The D steps without it need no double backward",
    )
    lambda_sty: float = Field(1.0, ge=0.0, description="style(-content) reconstruction, Eq. 2")
    lambda_ds: float = Field(
        1.0, ge=0.0, description="initial diversity-sensitive weight, Eq. 3 (decays to 0)"
    )
    lambda_cyc: float = Field(1.0, ge=0.0, description="cycle consistency, Eq. 4")
    lambda_con: float = Field(1.0, ge=0.0, description="content consistency, Eq. 5")
    lambda_self_rec: float = Field(
        0.0,
        ge=0.0,
        description="NOT in the paper (0 = paper): L1 of x vs G(x, E(x, y)), x with its own codes; the CPU presets "
        "use it because in short runs nothing else pins G's output to its input (docs/results.md)",
    )
    self_rec_final_fraction: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="lambda_self_rec at step ds_decay_steps as a fraction of its start value, linear in the step "
        "(1 = constant): a short run needs the term early to keep its input, and less of it late, when it pulls "
        "the outputs towards their sources and away from the defects",
    )
    lambda_fg: float = Field(1.0, ge=0.0, description="FG classification, Eq. 6")
    lambda_bg: float = Field(1.0, ge=0.0, description="BG classification, Eq. 7")
    ds_decay_steps: int = Field(100_000, ge=1, description="steps over which lambda_ds decays linearly to 0")
    ds_detach: Literal["none", "all_but_first"] = Field(
        "none",
        description="docs/model.md#a2: keep gradients through all four mixes, or only through G_11 (StarGAN style)",
    )
    ds_reduction: Literal["sum", "mean"] = Field(
        "sum", description="docs/model.md#a2: sum or mean of the 6 pairwise L1 terms"
    )
    classifier_losses: Literal["stargan_v1", "acgan"] = Field(
        "stargan_v1",
        description="docs/model.md#a3: D learns the classifiers on reals only, or also on fakes with target labels",
    )
    content_consistency_with: Literal["style_content", "anchor_normal"] = Field(
        "style_content",
        description="docs/model.md#a8: the ladder step that turns on L_con: (b) style_content or (f) anchor_normal",
    )
