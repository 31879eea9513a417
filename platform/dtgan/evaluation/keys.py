"""Metric keys, defined once: the trainer, the evaluator, MLflow tracking and the reports all use these names."""

from __future__ import annotations

import re
from typing import Literal

Guidance = Literal["latent", "reference", "mix"]
GUIDANCES: tuple[Guidance, ...] = ("latent", "reference", "mix")

TRAIN_PREFIX = "train/"
EVAL_PREFIX = "eval/"
DOWNSTREAM_PREFIX = "downstream/"

TRAIN_IMAGES_PER_S = "train/images_per_s"
TRAIN_STEP_MS = "train/step_ms"

EVAL_IDENTITY_PSNR = "eval/identity_psnr"
EVAL_IDENTITY_SSIM = "eval/identity_ssim"
EVAL_REMOVAL_PSNR = "eval/removal_psnr"
EVAL_TRANSFER_LOCALITY = "eval/transfer_locality"
EVAL_TRANSFER_BG_PSNR = "eval/transfer_bg_psnr"
# The do-nothing translation's removal PSNR (defect image vs its clean background): the bar removal must clear.
EVAL_REMOVAL_PSNR_DO_NOTHING = "eval/removal_psnr_do_nothing"
# How much G's output depends on its source image x: the per-pixel spread of outputs over sources under one
# (s, c), relative to the sources' own spread (1 = as varied as the inputs, 0 = x is ignored).
EVAL_INPUT_DEPENDENCE = "eval/input_dependence"
# G(x, E(x, y)) vs x on held-out normals: does x survive its own style (and content) code?
EVAL_SELF_RECON_PSNR = "eval/self_recon_psnr"
EVAL_SELF_RECON_SSIM = "eval/self_recon_ssim"
# Throughput of the evaluation itself (generated images/s in inference mode).
EVAL_GENERATED_IMAGES_PER_S = "eval/generated_images_per_s"

DISENTANGLEMENT_KEYS = (
    EVAL_IDENTITY_PSNR,
    EVAL_IDENTITY_SSIM,
    EVAL_REMOVAL_PSNR,
    EVAL_TRANSFER_LOCALITY,
    EVAL_TRANSFER_BG_PSNR,
    EVAL_REMOVAL_PSNR_DO_NOTHING,
    EVAL_INPUT_DEPENDENCE,
    EVAL_SELF_RECON_PSNR,
    EVAL_SELF_RECON_SSIM,
)

# Run tags (docs/interfaces.md "Metric keys").
TAG_GIT_SHA = "git_sha"
TAG_GIT_DIRTY = "git_dirty"
TAG_PRESET = "preset"
TAG_VARIANT = "variant"
TAG_SEED = "seed"
TAG_STUDY = "study"
TAG_FID_EXTRACTOR = "fid_extractor"
TAG_FID_WEIGHTS = "fid_weights"
# IC-LPIPS: the trunk and its weights fingerprint ("alex/7be5be79..."), or why no value was computed.
TAG_LPIPS_BACKBONE = "lpips_backbone"
TAG_IC_LPIPS_STATUS = "ic_lpips_status"
TAG_RAY_TRIAL_ID = "ray_trial_id"
TAG_METHOD = "method"  # how the synthetic images were made: dtgan, stargan_v2, ladder_<step>, crop_paste
TAG_CLASSIFIER_WEIGHTS = "classifier_weights"  # downstream runs: 'ImageNet' or 'from scratch'

# MLflow accepts alphanumerics, "_", "-", ".", " " and "/" in keys; anything else in a product or defect name
# (user data) is replaced so that a key never fails to log.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def safe_name(name: str) -> str:
    """A product or defect name as it appears inside a metric key."""
    return _UNSAFE.sub("-", name)


def train_key(term: str) -> str:
    """``train/<term>`` for a loss term such as ``adv`` or ``d_reg``."""
    return f"{TRAIN_PREFIX}{term}"


def _fidelity_key(metric: str, guidance: Guidance, product: str | None, defect: str | None) -> str:
    if guidance not in GUIDANCES:
        raise ValueError(f"guidance must be one of {GUIDANCES}, got {guidance!r}")
    key = f"{EVAL_PREFIX}{metric}_{guidance}"
    if product is not None:
        key += f"_{safe_name(product)}"
    if defect is not None:
        # A period separates the optional per-defect-type score (A14) from the product.
        key += f".{safe_name(defect)}"
    return key


def fid_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/fid_{guidance}`` (all products), ``eval/fid_{guidance}_{product}``, and with a defect type
    (the per-type option of A14) ``eval/fid_{guidance}.{defect}`` / ``eval/fid_{guidance}_{product}.{defect}``."""
    return _fidelity_key("fid", guidance, product, defect)


def kid_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """The KID counterpart of :func:`fid_key` (the mean over subsets)."""
    return _fidelity_key("kid", guidance, product, defect)


def is_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/is_{guidance}[_{product}][.{defect}]``: the Inception Score (mean over splits) of a synthetic set,
    computed with the FID extractor's logits (tag ``fid_extractor`` says which network)."""
    return _fidelity_key("is", guidance, product, defect)


def ic_lpips_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/ic_lpips_{guidance}[_{product}][.{defect}]``: intra-cluster LPIPS of a product x defect cell, or
    the mean over the cells of a product / of all products (tag ``lpips_backbone`` says which trunk)."""
    return _fidelity_key("ic_lpips", guidance, product, defect)


def downstream_key(arm: str, backbone: str, stat: Literal["", "mean", "std"] = "") -> str:
    """``downstream/error_{arm}_{backbone}`` with an optional ``_mean``/``_std`` over seeds."""
    key = f"{DOWNSTREAM_PREFIX}error_{safe_name(arm)}_{safe_name(backbone)}"
    return f"{key}_{stat}" if stat else key
