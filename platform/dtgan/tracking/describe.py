"""What a run says about itself in the MLflow UI: variant run names, one-line descriptions, toggle tags,
headline ``final/`` metrics. Pure functions (no MLflow here): the studies call them, the backend logs them."""

from __future__ import annotations

import math
from collections.abc import Mapping

from dtgan import keys
from dtgan.config.model import LADDER_STEPS, TOGGLE_OF_STEP, TOGGLES, Toggles, toggles_of_step

# How the UI names a toggle: short (run names) and long (descriptions).
TOGGLE_SHORT = {
    "style_content": "sty_con",
    "fg_classifier": "fg_cls",
    "bg_classifier": "bg_cls",
    "separate_decoders": "sep_dec",
    "anchor_normal": "anchor",
    "mapping_noise": "noise",
}
TOGGLE_LABEL = {
    "style_content": "style/content split",
    "fg_classifier": "FG classifier",
    "bg_classifier": "BG classifier",
    "separate_decoders": "separate BG/FG decoders",
    "anchor_normal": "normal content anchored at 0",
    "mapping_noise": "mapping-network noise",
}
# The final/ metrics sit at this step (keys.final_key names them).
FINAL_STEP = 0
_FINAL_SOURCES = (
    *(keys.fid_key(g) for g in keys.GUIDANCES),
    *(keys.kid_key(g) for g in keys.GUIDANCES),
    *(keys.is_key(g) for g in keys.GUIDANCES),
    *(keys.ic_lpips_key(g) for g in keys.GUIDANCES),
)


def toggle_tags(toggles: Toggles) -> dict[str, str]:
    """``toggle.<name>`` = ``true``/``false`` for each of the six toggles (filterable in the runs table)."""
    return {keys.toggle_tag(name): str(bool(getattr(toggles, name))).lower() for name in TOGGLES}


def variant_run_name(variant: str, seed: int) -> str:
    """``a=stargan-s777``, ``c=b+fg_cls-s777``: the ladder step, what it adds to the step before, the seed."""
    if variant not in LADDER_STEPS:
        return f"{variant}-s{seed}"
    if variant == "a":
        return f"a=stargan-s{seed}"
    previous = LADDER_STEPS[LADDER_STEPS.index(variant) - 1]
    return f"{variant}={previous}+{TOGGLE_SHORT[TOGGLE_OF_STEP[variant]]}-s{seed}"


def variant_description(variant: str, seed: int | None = None) -> str:
    """One line: ``(c) = (b) + FG classifier (model.fg_classifier=true); on: ...``."""
    if variant not in LADDER_STEPS:
        return f"variant {variant}" + (f", seed {seed}" if seed is not None else "")
    toggles = toggles_of_step(variant)
    on = [TOGGLE_LABEL[t] for t in TOGGLES if getattr(toggles, t)]
    if variant == "a":
        head = "(a) StarGAN v2 baseline: every DT-GAN toggle off"
    else:
        previous = LADDER_STEPS[LADDER_STEPS.index(variant) - 1]
        toggle = TOGGLE_OF_STEP[variant]
        head = f"({variant}) = ({previous}) + {TOGGLE_LABEL[toggle]} (model.{toggle}=true)"
        if variant == "g":
            head += ", the full DT-GAN"
        head += f"; on: {', '.join(on)}"
    return head + (f"; seed {seed}" if seed is not None else "")


def search_description(sampled: Mapping[str, object], variant: str | None = None) -> str:
    """One line for a search trial: the sampled values (and the ladder step it searches on)."""
    values = ", ".join(f"{k}={_short(v)}" for k, v in sorted(sampled.items())) or "no sampled values"
    return f"search trial on ({variant}): {values}" if variant else f"search trial: {values}"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def final_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The headline results renamed under ``final/`` (FID/KID/IS/IC-LPIPS per guidance over all products, the downstream
    classifier errors' means over seeds); non-finite values are left out."""
    out = {}
    for key, value in metrics.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if key in _FINAL_SOURCES:
            out[keys.final_key(key)] = float(value)
        elif key.startswith(keys.DOWNSTREAM_PREFIX) and key.endswith("_mean"):
            out[keys.final_key(key)] = float(value)
    return out
