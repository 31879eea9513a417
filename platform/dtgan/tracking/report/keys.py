"""The metric keys, tags, params and artifacts a report reads (docs/interfaces.md "Metric keys", "Report inputs").

Until ``dtgan.evaluation.keys`` lands, the documented key patterns live here, in one place.
"""

from __future__ import annotations

import re

GUIDANCES = ("latent", "reference", "mix")
ARMS = ("no_aug", "trad_aug", "latent", "reference", "mix", "crop_paste")
LADDER_STEPS = ("a", "b", "c", "d", "e", "f", "g")
SCOPE_ALL = "all"

# Tags (DESIGN.md "Runs, names, tracking").
TAG_PARENT = "mlflow.parentRunId"
TAG_STUDY = "study"
TAG_VARIANT = "variant"
TAG_SEED = "seed"
TAG_FID_EXTRACTOR = "fid_extractor"
TAG_FID_WEIGHTS = "fid_weights"
TAG_LPIPS_BACKBONE = "lpips_backbone"  # "alex/<weights fingerprint>" when IC-LPIPS was computed
TAG_IC_LPIPS_STATUS = "ic_lpips_status"  # "computed" or "not computed: <why>"
TAG_CLASSIFIER_WEIGHTS = "classifier_weights"  # downstream runs: 'ImageNet' or 'from scratch'
TAG_SEARCH_OBJECTIVES = "search_objectives"  # on a search's parent run: "eval/fid_mix:min,..."

# Params (the flattened config).
PARAM_NORMALS_PER_CLASS = "downstream.normals_per_class"
PARAM_TARGET_PRODUCT = "downstream.target_product"
PARAM_DEFECT_SOURCE = "downstream.defect_source"


def fidelity_key(metric: str, guidance: str, scope: str = SCOPE_ALL) -> str:
    """``eval/fid_mix`` (all products) or ``eval/fid_mix_A`` (product A); metric is ``fid`` or ``kid``."""
    return f"eval/{metric}_{guidance}" if scope == SCOPE_ALL else f"eval/{metric}_{guidance}_{scope}"


INIT_PREFIX = "eval_init/"  # the same evaluation of the step-0 checkpoint (train.checkpoint_at_start)


def init_fidelity_key(metric: str, guidance: str, scope: str = SCOPE_ALL) -> str:
    """``eval_init/fid_mix``: FID/KID of the run's initialised networks (its ceiling), same set and extractor."""
    return INIT_PREFIX + fidelity_key(metric, guidance, scope).removeprefix("eval/")


def error_key(arm: str, backbone: str) -> str:
    """``downstream/error_mix_resnet50``: the test error (fraction in [0, 1]) of one seed's classifier."""
    return f"downstream/error_{arm}_{backbone}"


def generated_features_artifact(guidance: str, scope: str = SCOPE_ALL) -> str:
    """Inception (or fallback) features of a generated set: float32 (N, D) ``.npy``."""
    return f"eval/features/gen_{guidance}_{scope}.npy"


def real_features_artifact(scope: str = SCOPE_ALL) -> str:
    """Features of the real reference set (training defects) of a scope: float32 (N, D) ``.npy``."""
    return f"eval/features/real_{scope}.npy"


# A product inside a key is safe_name'd (no "."); a "." starts the optional per-defect-type part (A14), which the
# report's tables (pooled over defect types) do not read: ``eval/fid_mix_A.scratch`` is not product "A.scratch".
_FIDELITY = re.compile(r"^eval/(fid|kid)_(latent|reference|mix)(?:_([^.]+))?$")
_ERROR = re.compile(r"^downstream/error_(no_aug|trad_aug|latent|reference|mix|crop_paste)_(.+?)$")


def parse_fidelity_key(key: str) -> tuple[str, str, str] | None:
    """``eval/kid_mix_B`` -> ("kid", "mix", "B"); ``eval/fid_mix`` -> ("fid", "mix", "all"); per-defect keys
    (``eval/fid_mix_B.scratch``, ``eval/fid_mix.scratch``) and anything else -> None."""
    match = _FIDELITY.match(key)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3) or SCOPE_ALL


_DIVERSITY = re.compile(r"^eval/(is|ic_lpips)_(latent|reference|mix)(?:_([^.]+))?$")


def diversity_key(metric: str, guidance: str, scope: str = SCOPE_ALL) -> str:
    """``eval/is_mix`` / ``eval/ic_lpips_mix_A``: the field's IS and IC-LPIPS (higher is better)."""
    return fidelity_key(metric, guidance, scope)


def parse_diversity_key(key: str) -> tuple[str, str, str] | None:
    """``eval/ic_lpips_mix_B`` -> ("ic_lpips", "mix", "B"); ``eval/is_mix`` -> ("is", "mix", "all"); else None."""
    match = _DIVERSITY.match(key)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3) or SCOPE_ALL


def parse_error_key(key: str) -> tuple[str, str] | None:
    """``downstream/error_mix_resnet50`` -> ("mix", "resnet50"); aggregated ``_mean``/``_std`` keys -> None."""
    match = _ERROR.match(key)
    if match is None or key.endswith(("_mean", "_std")):
        return None
    return match.group(1), match.group(2)
