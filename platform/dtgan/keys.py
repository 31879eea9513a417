"""The names dtgan logs and reads, defined once: MLflow tags, metric keys, params and artifact paths.

The trainer, the evaluator, the studies, the MLflow adapter and the reports all import these; each key builder
sits beside the parser that reads it back (tests/unit/test_keys.py round-trips them). Ground floor: the standard
library only, nothing of dtgan, so that any module (and a script without torch or MLflow) can import it.
The strings are what MLflow stores hold and docs/interfaces.md ("Metric keys", "Report inputs") documents:
changing one breaks every store and report written before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

# --- MLflow tags ---------------------------------------------------------------------------------------------

# Set by MLflow itself (or read by its UI). A child run points at its study run through TAG_PARENT_RUN_ID.
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
# Shown by the MLflow UI as the run's (and the study's) description.
TAG_NOTE = "mlflow.note.content"
# The commit MLflow's UI shows in the runs table's "Source"/"Version" columns (mirrors git_sha).
TAG_GIT_COMMIT = "mlflow.source.git.commit"
# An experiment tag: MLflow 3's UI opens a "custom_model_development" experiment on its runs table, not on
# the GenAI overview (traces) it shows an experiment of unknown kind.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_ML = "custom_model_development"

# "study" on the parent run of a study, "trial" on each child run.
TAG_RUN_KIND = "run_kind"
RUN_KIND_STUDY = "study"
RUN_KIND_TRIAL = "trial"
# The study's name, on the study run and on each of its trials.
TAG_STUDY = "study"
# What kind of study a parent run is (ablation, ladder, search, augmentation, ...).
TAG_STUDY_KIND = "study_kind"
# Identifies one launch of a study; the same key on --resume finds the same parent run.
TAG_RESUME_KEY = "resume_key"
# Identifies one trial inside its study (e.g. variant + seed); the same key finds the same child run.
TAG_TRIAL_KEY = "trial_key"
# One line: why a run ended FAILED (or KILLED).
TAG_ERROR = "error"
# On a search's parent run: its objectives, "eval/fid_mix:min,downstream/error_mix_resnet50:min"
# (search_objectives_tag / parse_search_objectives, below the metric keys).
TAG_SEARCH_OBJECTIVES = "search_objectives"
# On a study's parent run: its best trial (name and run id).
TAG_BEST_TRIAL = "best_trial"
TAG_BEST_RUN_ID = "best_run_id"

# The descriptive tags of docs/interfaces.md#metric-keys-dtgankeys, set by the callers (studies, trainer, evaluation).
# git_sha and git_dirty are fields of dtgan.provenance.git_state() (which stays free of dtgan imports), logged as
# tags by the MLflow adapter's log_provenance; git_sha is also mirrored into TAG_GIT_COMMIT. TAG_GIT_DIRTY is read
# by no code: it stays because docs/interfaces.md names it among the tags users filter on.
TAG_GIT_SHA = "git_sha"
TAG_GIT_DIRTY = "git_dirty"
TAG_PRESET = "preset"
TAG_VARIANT = "variant"
TAG_SEED = "seed"
TAG_RAY_TRIAL_ID = "ray_trial_id"
TAG_FID_EXTRACTOR = "fid_extractor"
TAG_FID_WEIGHTS = "fid_weights"
# IC-LPIPS: the trunk and its weights fingerprint ("alex/7be5be79..."), or why no value was computed
# ("computed" or "not computed: <why>").
TAG_LPIPS_BACKBONE = "lpips_backbone"
TAG_IC_LPIPS_STATUS = "ic_lpips_status"
TAG_METHOD = "method"  # how the synthetic images were made: dtgan, stargan_v2, ladder_<step>, crop_paste
TAG_CLASSIFIER_WEIGHTS = "classifier_weights"  # downstream runs: 'ImageNet' or 'from scratch'
# The checkpoint an augmentation study synthesises with (on its parent run), and a trial's last checkpoint.
TAG_CHECKPOINT = "checkpoint"
TAG_FINAL_CHECKPOINT = "final_checkpoint"
# The training step the final/ metrics were measured at (a tag: the metrics themselves sit at step 0).
TAG_EVALUATED_STEP = "evaluated_step"
# The steps a trial continued from after a restart (its node lost, the study resumed): comma-separated.
TAG_RESUMED_AT_STEPS = "resumed_at_steps"
# ``toggle.<name>`` = ``true``/``false`` for each model toggle (filterable in the runs table).
TOGGLE_TAG_PREFIX = "toggle."

# Where register_generator left the generator of a run.
TAG_REGISTERED_MODEL_NAME = "registered_model_name"
TAG_REGISTERED_MODEL_VERSION = "registered_model_version"
TAG_LOGGED_MODEL_ID = "logged_model_id"


def toggle_tag(toggle: str) -> str:
    """``toggle.<name>``: the tag of one model toggle."""
    return f"{TOGGLE_TAG_PREFIX}{toggle}"


# --- Params (the flattened config, plus what the studies add) ------------------------------------------------

PARAM_NORMALS_PER_CLASS = "downstream.normals_per_class"  # a downstream run's data set size (Tables 2, 3/8)
PARAM_TARGET_PRODUCT = "downstream.target_product"  # cross-domain (Table 4): the single product classified
PARAM_DEFECT_SOURCE = "downstream.defect_source"  # cross-domain: products whose defects were transferred

# --- Metric keys ---------------------------------------------------------------------------------------------

Guidance = Literal["latent", "reference", "mix"]
GUIDANCES: tuple[Guidance, ...] = ("latent", "reference", "mix")
# The downstream study's arms (what the classifier trains on), as the report orders them.
ARMS = ("no_aug", "trad_aug", "latent", "reference", "mix", "crop_paste", "crop_paste_mix")
# The metrics of the eval/{metric}_{guidance}[_{product}][.{defect}] keys: fidelity (lower is better) and the
# field's diversity yardsticks (higher is better).
FIDELITY_METRICS = ("fid", "kid")
DIVERSITY_METRICS = ("is", "ic_lpips")
# The scope of a report cell or a feature file: all products pooled, or a (safe_name'd) product; also the
# downstream study's pooled classifier scope and defect source (downstream.products / defect_sources).
SCOPE_ALL = "all"
# A run folder's checkpoints (<run>/checkpoints/step_XXXXXXXX.pt) and the MLflow artifact folder of a run's
# checkpoints: one name, so that reading the store never imports the training code (torch).
CHECKPOINT_DIR = "checkpoints"

TRAIN_PREFIX = "train/"
EVAL_PREFIX = "eval/"
EVAL_INIT_PREFIX = "eval_init/"  # the same evaluation of the step-0 checkpoint (train.checkpoint_at_start)
DOWNSTREAM_PREFIX = "downstream/"
# Headline results, one value per run at step 0, so MLflow's chart view compares runs side by side.
FINAL_PREFIX = "final/"
BEST_PREFIX = "best/"  # on a study's parent run: the best trial's objective value

TRAIN_IMAGES_PER_S = "train/images_per_s"
TRAIN_STEP_MS = "train/step_ms"
TRAIN_LAMBDA_DS = "train/lambda_ds"
TRAIN_EMA_BETA = "train/ema_beta"
TRAIN_WORKER_IMAGES_PER_S = "train/worker_images_per_s"  # Ray Train: the aggregate images/s / workers

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
# Where the defect was painted: G(x, defect style) vs G(x, x's own style), the generator's own reconstruction, so
# pixels it merely fails to reproduce do not count as changes (transfer_* compare with the source x itself).
EVAL_PAINT_LOCALITY = "eval/paint_locality"
EVAL_PAINT_BG_PSNR = "eval/paint_bg_psnr"
# Throughput of the evaluation itself (generated images/s in inference mode).
EVAL_GENERATED_IMAGES_PER_S = "eval/generated_images_per_s"

DISENTANGLEMENT_KEYS = (
    EVAL_IDENTITY_PSNR,
    EVAL_IDENTITY_SSIM,
    EVAL_REMOVAL_PSNR,
    EVAL_TRANSFER_LOCALITY,
    EVAL_TRANSFER_BG_PSNR,
    EVAL_PAINT_LOCALITY,
    EVAL_PAINT_BG_PSNR,
    EVAL_REMOVAL_PSNR_DO_NOTHING,
    EVAL_INPUT_DEPENDENCE,
    EVAL_SELF_RECON_PSNR,
    EVAL_SELF_RECON_SSIM,
)

# The validity ladder (dtgan.evaluation.ladder): 1 when FID orders the real-data rungs as it must on all products
# pooled (0 when not; absent when untested), the separation of "paints nothing" from the real defects there, and
# how many scopes (all, products, product x defect cells) failed.
EVAL_LADDER_PASS = "eval/ladder_pass"
EVAL_LADDER_SEPARATION = "eval/ladder_separation_fid"
EVAL_LADDER_FAILING_SCOPES = "eval/ladder_failing_scopes"
# "pass", "untested" or "fail: <extractor>: this metric cannot tell a painted defect from none here (<scopes>)...".
TAG_LADDER_VERDICT = "ladder_verdict"
# The scopes whose ladder failed, comma-separated: "all", a product (safe_name) or "product.defect"; reports mark
# no winner in a column of a failing scope.
TAG_LADDER_FAILING = "ladder_failing"
LADDER_CANNOT_TELL = "this metric cannot tell a painted defect from none here"


def ladder_scope(product: str | None = None, defect: str | None = None) -> str:
    """A ladder scope as ``ladder_failing`` lists it: ``all``, ``<product>`` or ``<product>.<defect>``."""
    if product is None:
        return SCOPE_ALL
    return safe_name(product) if defect is None else f"{safe_name(product)}.{safe_name(defect)}"


def parse_ladder_failing(tag: str | None) -> set[str]:
    """The scopes of a ``ladder_failing`` tag (empty for none)."""
    return {part for part in (tag or "").split(",") if part}


# Defect recall (dtgan.evaluation.defect_recall): eval/defect_recall_{guidance}[_{product}][.{defect}] = the share
# of synthetic images the defect classifier assigns to the intended defect type; its ceiling (held-out real
# defects) and floor (normals) over all products; the classifier's accuracy on held-out and on training images.
EVAL_DEFECT_RECALL_CEILING = "eval/defect_recall_ceiling"
EVAL_DEFECT_RECALL_FLOOR = "eval/defect_recall_floor"
EVAL_DEFECT_CLASSIFIER_ACCURACY = "eval/defect_classifier_holdout_accuracy"
EVAL_DEFECT_CLASSIFIER_TRAIN_ACCURACY = "eval/defect_classifier_train_accuracy"


def defect_recall_key(guidance: str, product: str | None = None, defect: str | None = None) -> str:
    """``eval/defect_recall_{guidance}[_{product}][.{defect}]`` (product and defect as :func:`safe_name`)."""
    if guidance not in GUIDANCES:
        raise ValueError(f"guidance must be one of {GUIDANCES}, got {guidance!r}")
    key = f"{EVAL_PREFIX}defect_recall_{guidance}"
    if product is not None:
        key += f"_{safe_name(product)}"
    if defect is not None:
        key += f".{safe_name(defect)}"
    return key


# A search's cheap FID-mix during training (few images per cell): the early-stopping signal.
SEARCH_INTERMEDIATE_FID = "search/fid_mix_intermediate"
# % of synthetic mix images the defect classifier does not call the intended defect (100 - defect recall, all products)
SEARCH_INTERMEDIATE_DEFECT_MISS = "search/defect_miss_pct_intermediate"
# validation error % of a short downstream study of the checkpoint (the mix arm, a classifier seed or two)
SEARCH_INTERMEDIATE_PROBE = "search/probe_val_error_pct_intermediate"

# MLflow accepts alphanumerics, "_", "-", ".", " " and "/" in keys; anything else in a product or defect name
# (user data) is replaced so that a key never fails to log. "." is replaced too: it starts the per-defect part.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def safe_name(name: str) -> str:
    """A product or defect name as it appears inside a metric key (idempotent)."""
    return _UNSAFE.sub("-", name)


FIELD_ACCURACY = f"{DOWNSTREAM_PREFIX}field_accuracy"


def field_accuracy_key(product: str | None = None) -> str:
    """``downstream/field_accuracy[_{product}]``: the field's defect-type classification accuracy (%) on the real
    test defects, of one product's classifier, or the mean over products (AnomalyDiffusion's protocol)."""
    return f"{FIELD_ACCURACY}_{safe_name(product)}" if product else FIELD_ACCURACY


def train_key(term: str) -> str:
    """``train/<term>`` for a loss term such as ``g/latent/adv`` or a rate such as ``images_per_s``."""
    return f"{TRAIN_PREFIX}{term}"


def parse_train_key(key: str) -> str | None:
    """``train/g/latent/adv`` -> ``g/latent/adv``; anything else -> None."""
    term = key.removeprefix(TRAIN_PREFIX)
    return term if term != key and term else None


def eval_key(metric: str, guidance: str, product: str | None = None, defect: str | None = None) -> str:
    """``eval/{metric}_{guidance}`` (all products), ``eval/{metric}_{guidance}_{product}``, and with a defect type
    (the per-type option of docs/model.md#a14) ``eval/{metric}_{guidance}.{defect}`` / ``..._{product}.{defect}``; metric one
    of FIDELITY_METRICS + DIVERSITY_METRICS. Product and defect go through :func:`safe_name`, so a "." only ever
    starts the defect part."""
    if metric not in FIDELITY_METRICS + DIVERSITY_METRICS:
        raise ValueError(f"metric must be one of {FIDELITY_METRICS + DIVERSITY_METRICS}, got {metric!r}")
    if guidance not in GUIDANCES:
        raise ValueError(f"guidance must be one of {GUIDANCES}, got {guidance!r}")
    key = f"{EVAL_PREFIX}{metric}_{guidance}"
    if product is not None:
        key += f"_{safe_name(product)}"
    if defect is not None:
        key += f".{safe_name(defect)}"
    return key


_EVAL = re.compile(
    rf"^{EVAL_PREFIX}({'|'.join(FIDELITY_METRICS + DIVERSITY_METRICS)})_({'|'.join(GUIDANCES)})"
    r"(?:_([^.]+))?(?:\.([^.]+))?$"
)


def parse_eval_key(key: str) -> tuple[str, str, str | None, str | None] | None:
    """The inverse of :func:`eval_key` (of safe names): ``eval/fid_mix_A.scratch`` -> ("fid", "mix", "A",
    "scratch"), ``eval/is_mix`` -> ("is", "mix", None, None); anything else -> None."""
    match = _EVAL.match(key)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3), match.group(4)


def fid_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/fid_{guidance}[_{product}][.{defect}]`` (see :func:`eval_key`)."""
    return eval_key("fid", guidance, product, defect)


def kid_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """The KID counterpart of :func:`fid_key` (the mean over subsets)."""
    return eval_key("kid", guidance, product, defect)


def is_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/is_{guidance}[_{product}][.{defect}]``: the Inception Score (mean over splits) of a synthetic set,
    computed with the FID extractor's logits (tag ``fid_extractor`` says which network)."""
    return eval_key("is", guidance, product, defect)


def ic_lpips_key(guidance: Guidance, product: str | None = None, defect: str | None = None) -> str:
    """``eval/ic_lpips_{guidance}[_{product}][.{defect}]``: intra-cluster LPIPS of a product x defect cell, or
    the mean over the cells of a product / of all products (tag ``lpips_backbone`` says which trunk)."""
    return eval_key("ic_lpips", guidance, product, defect)


def scope_product(scope: str) -> str | None:
    """The product of a report scope: None for :data:`SCOPE_ALL` (``eval_key(m, g, scope_product(s))``)."""
    return None if scope == SCOPE_ALL else scope


def _parse_scoped(key: str, metrics: tuple[str, ...]) -> tuple[str, str, str] | None:
    parsed = parse_eval_key(key)
    if parsed is None or parsed[0] not in metrics or parsed[3] is not None:
        return None
    return parsed[0], parsed[1], parsed[2] or SCOPE_ALL


def parse_fidelity_key(key: str) -> tuple[str, str, str] | None:
    """The report's read of FID/KID keys pooled over defect types: ``eval/kid_mix_B`` -> ("kid", "mix", "B");
    ``eval/fid_mix`` -> ("fid", "mix", "all"); per-defect keys (``eval/fid_mix_B.scratch``, ``eval/fid_mix.scratch``:
    not product "B.scratch"), IS/IC-LPIPS keys and anything else -> None."""
    return _parse_scoped(key, FIDELITY_METRICS)


def parse_diversity_key(key: str) -> tuple[str, str, str] | None:
    """The same for IS and IC-LPIPS: ``eval/ic_lpips_mix_B`` -> ("ic_lpips", "mix", "B"); ``eval/is_mix`` ->
    ("is", "mix", "all"); per-defect keys and anything else -> None."""
    return _parse_scoped(key, DIVERSITY_METRICS)


def init_key(key: str) -> str:
    """``eval/fid_mix`` -> ``eval_init/fid_mix``: the same metric of the run's initialised networks (step 0)."""
    if not key.startswith(EVAL_PREFIX):
        raise ValueError(f"not an {EVAL_PREFIX} key: {key!r}")
    return EVAL_INIT_PREFIX + key.removeprefix(EVAL_PREFIX)


def parse_init_key(key: str) -> str | None:
    """``eval_init/fid_mix`` -> ``eval/fid_mix``; anything else -> None."""
    rest = key.removeprefix(EVAL_INIT_PREFIX)
    return EVAL_PREFIX + rest if rest != key and rest else None


def final_key(key: str) -> str:
    """The ``final/`` headline name of an eval or downstream mean key: ``eval/fid_mix`` -> ``final/fid_mix``,
    ``downstream/error_mix_resnet50_mean`` -> ``final/error_mix_resnet50``."""
    if key.startswith(EVAL_PREFIX):
        return FINAL_PREFIX + key.removeprefix(EVAL_PREFIX)
    if key.startswith(DOWNSTREAM_PREFIX) and key.endswith("_mean"):
        return FINAL_PREFIX + key.removeprefix(DOWNSTREAM_PREFIX).removesuffix("_mean")
    raise ValueError(f"no final/ name for {key!r}")


def best_key(metric: str) -> str:
    """``best/eval/fid_mix``: the best trial's value of an objective, on the study's parent run."""
    return f"{BEST_PREFIX}{metric}"


def search_objectives_tag(objectives: Iterable[tuple[str, str]]) -> str:
    """The value of TAG_SEARCH_OBJECTIVES: ``eval/fid_mix:min,downstream/error_mix_resnet50:min``."""
    return ",".join(f"{metric}:{mode}" for metric, mode in objectives)


def parse_search_objectives(tag: str | None) -> tuple[tuple[str, str], ...]:
    """``"eval/fid_mix:min,downstream/error_mix_resnet50:min"`` -> ((key, mode), ...); no tag: FID mix, min; an
    item without a ``:min``/``:max`` is minimised."""
    if not tag:
        return ((fid_key("mix"), "min"),)
    objectives = []
    for item in tag.split(","):
        key, _, mode = item.strip().rpartition(":")
        objectives.append((key, mode) if mode in ("min", "max") and key else (item.strip(), "min"))
    return tuple(objectives)


def downstream_key(arm: str, backbone: str, stat: Literal["", "mean", "std"] = "") -> str:
    """``downstream/error_{arm}_{backbone}``, a test error (fraction in [0, 1]) of one seed's classifier, with an
    optional ``_mean``/``_std`` over seeds. The arm may be qualified (``reference_vA_B_n4000``)."""
    key = f"{DOWNSTREAM_PREFIX}error_{safe_name(arm)}_{safe_name(backbone)}"
    return f"{key}_{stat}" if stat else key


# longest arm first: 'crop_paste_mix' must not be read as 'crop_paste' of a backbone 'mix_...'
_ERROR = re.compile(rf"^{DOWNSTREAM_PREFIX}error_({'|'.join(sorted(ARMS, key=len, reverse=True))})_(.+?)$")


def parse_error_key(key: str) -> tuple[str, str] | None:
    """The report's read of one seed's error: ``downstream/error_mix_resnet50`` -> ("mix", "resnet50") for an
    arm of :data:`ARMS`; aggregated ``_mean``/``_std`` keys and anything else -> None."""
    match = _ERROR.match(key)
    if match is None or key.endswith(("_mean", "_std")):
        return None
    return match.group(1), match.group(2)


# --- Artifacts -----------------------------------------------------------------------------------------------

# A trial run's evaluation: its JSON and images under eval/<step folder>/, the FID/KID features under
# eval/features/ (the report's bootstrap CIs), the step-0 evaluation under eval_init/.
EVAL_ARTIFACT_DIR = "eval"
EVAL_INIT_ARTIFACT_DIR = "eval_init"
FEATURES_DIR = "features"  # also the folder beside evaluation.json
FEATURES_ARTIFACT_DIR = f"{EVAL_ARTIFACT_DIR}/{FEATURES_DIR}"
DOWNSTREAM_ARTIFACT_DIR = "downstream"  # a trial's downstream.json
DOWNSTREAM_JOBS_ARTIFACT = f"{DOWNSTREAM_ARTIFACT_DIR}/jobs.json"  # an augmentation study's classifier jobs
# On a study's parent run.
TRIALS_ARTIFACT = "study/trials.json"
PARETO_ARTIFACT = "study/pareto_front.json"
VARIANTS_TABLE_ARTIFACT = "study/variants_table.json"


def generated_features_file(guidance: str, scope: str = SCOPE_ALL) -> str:
    """``gen_{guidance}_{scope}.npy``: a synthetic set's features, float32 (N, D)."""
    return f"gen_{guidance}_{scope}.npy"


def real_features_file(scope: str = SCOPE_ALL) -> str:
    """``real_{scope}.npy``: the features of the real reference set (training defects) of a scope."""
    return f"real_{scope}.npy"


def generated_features_artifact(guidance: str, scope: str = SCOPE_ALL) -> str:
    """``eval/features/gen_{guidance}_{scope}.npy`` on the trial run."""
    return f"{FEATURES_ARTIFACT_DIR}/{generated_features_file(guidance, scope)}"


def real_features_artifact(scope: str = SCOPE_ALL) -> str:
    """``eval/features/real_{scope}.npy`` on the trial run."""
    return f"{FEATURES_ARTIFACT_DIR}/{real_features_file(scope)}"
