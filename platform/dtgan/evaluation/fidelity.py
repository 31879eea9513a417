"""FID and KID with torch-fidelity, computed from features extracted once per image set, so that the features
can be reused (across scopes, and by the report's bootstrap) without running the extractor again.

The real set's features are cached under a key we build ourselves (data, split, selection, image size,
extractor, weights) as ``.npz`` files that cannot carry code (feature_cache.py). Uses torch-fidelity 0.4's building blocks behind
``calculate_metrics`` (``utils.create_feature_extractor``, ``utils.get_featuresdict_from_dataset``,
``metric_fid.fid_features_to_statistics``/``fid_statistics_to_metric``, ``metric_kid.kid_features_to_metric``):
the same numbers as ``calculate_metrics(fid=True, kid=True)``, which keeps its features to itself.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from dtgan.config.evaluation import EvaluationConfig
from dtgan.errors import DataError
from dtgan.evaluation.extractors import INCEPTION, ExtractorSpec, build_inception, register_extractors
from dtgan.evaluation.feature_cache import (
    RealSetKey,
    cached_feature_file,
    read_cached_features,
    write_cached_features,
)
from dtgan.evaluation.kid import kid_from_features
from dtgan.training.environment import resolve_device

log = logging.getLogger(__name__)

FidStatistics = dict[str, np.ndarray]  # torch-fidelity's {"mu": (D,), "sigma": (D, D)}


class UInt8Images(Dataset):
    """torch-fidelity's input: items are bare uint8 (3, H, W) tensors; gray images are repeated to 3 channels."""

    def __init__(self, images_uint8: torch.Tensor) -> None:
        if (
            images_uint8.dtype != torch.uint8
            or images_uint8.dim() != 4
            or images_uint8.shape[1] not in (1, 3)
        ):
            raise ValueError(
                f"expected uint8 (N, 1|3, H, W), got {images_uint8.dtype} {tuple(images_uint8.shape)}"
            )
        self.images = images_uint8

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


@dataclass(frozen=True)
class FidelityResult:
    """One FID/KID pair and everything needed to read it."""

    fid: float
    kid_mean: float
    kid_std: float
    n_fake: int
    n_real: int
    kid_subset_size: int
    kid_subsets: int
    extractor: str
    weights_fingerprint: str
    real_cache_name: str | None
    real_cache_hit: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RealFeatures:
    """The features of one real set, their FID statistics (computed once, used by every guidance) and where
    they came from."""

    features: torch.Tensor  # (N, D) float32
    statistics: FidStatistics
    cache_name: str | None
    cache_hit: bool


def choose_kid_subset_size(cfg: EvaluationConfig, n_fake: int, n_real: int, what: str) -> int:
    """docs/model.md#a15: min(kid_subset_size_max, n_real, n_fake); an error naming the set when that is below the minimum."""
    size = min(cfg.kid_subset_size_max, n_fake, n_real)
    if size < cfg.kid_subset_size_min:
        raise DataError(
            f"{what}: {n_real} real and {n_fake} synthetic images, KID needs at least "
            f"evaluation.kid_subset_size_min={cfg.kid_subset_size_min} of each; add real images of this set, "
            f"raise evaluation.images_per_product_per_defect, or lower evaluation.kid_subset_size_min"
        )
    return size


class FeatureExtractor:
    """The torch-fidelity extractor of ``spec``, built once: uint8 image sets in, (N, D) float32 features out;
    ``with_logits`` also gives the logits the Inception Score needs, from the same forward pass."""

    def __init__(
        self, spec: ExtractorSpec, cfg: EvaluationConfig, device: torch.device, with_logits: bool = False
    ) -> None:
        register_extractors()
        self.spec = spec
        self.cfg = cfg
        self.layers = [spec.feature_layer, *([spec.logits_layer] if with_logits else [])]
        # torch-fidelity ignores unknown keys (device= does nothing) and defaults cuda to True.
        self.cuda = device.type == "cuda"
        self.cache_root = Path(cfg.cache_dir).expanduser() / "fidelity"
        if spec.name == INCEPTION:  # weights hash-checked and read with weights_only=True
            self.net = build_inception(spec, cfg.inception_weights_sha256, self.cuda, self.layers)
        else:  # dtgan-defect-cnn: our class, reads its weights with weights_only=True
            self.net = create_feature_extractor(
                spec.name,
                self.layers,
                cuda=self.cuda,
                feature_extractor_weights_path=spec.weights_path,
                verbose=False,
            )

    def cache_file(self, cache_name: str) -> Path:
        return cached_feature_file(self.cache_root, cache_name, self.spec.name, self.spec.feature_layer)

    def is_cached(self, cache_name: str) -> bool:
        return self.cache_file(cache_name).is_file()

    def cached(self, cache_name: str | None, n_images: int) -> torch.Tensor | None:
        """The cached features of ``n_images`` images named ``cache_name``, or None."""
        if cache_name is None or not self.is_cached(cache_name):
            return None
        features = read_cached_features(self.cache_file(cache_name))
        return features if features is not None and features.shape[0] == n_images else None

    def __call__(self, images_uint8: torch.Tensor, cache_name: str | None = None) -> torch.Tensor:
        """(N, D) features of uint8 (N, 1|3, H, W) images; read from / written to the cache when named."""
        cached = self.cached(cache_name, images_uint8.shape[0])
        if cached is not None:
            return cached
        features = self.extract(images_uint8)[self.spec.feature_layer]
        if cache_name is not None:
            write_cached_features(self.cache_file(cache_name), features)
        return features

    def extract(self, images_uint8: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer of ``self.layers`` of uint8 (N, 1|3, H, W) images (never cached)."""
        return get_featuresdict_from_dataset(
            UInt8Images(images_uint8),
            self.net,
            self.cfg.batch_size,
            self.cuda,
            True,  # save_cpu_ram: no DataLoader worker processes
            False,  # verbose
        )

    def real(self, x_real: torch.Tensor, real_key: RealSetKey | None) -> RealFeatures:
        """Features and FID statistics of a real set, cached under ``real_key`` when given."""
        cache_name = real_key.cache_name() if real_key is not None else None
        cached = self.cached(cache_name, x_real.shape[0])
        hit = cached is not None
        features = cached if hit else self(x_real, cache_name)
        return RealFeatures(features, fid_features_to_statistics(features), cache_name, hit)


def fid_kid_from_features(
    f_fake: torch.Tensor, real: RealFeatures, spec: ExtractorSpec, cfg: EvaluationConfig, what: str = "set"
) -> FidelityResult:
    """FID and KID between synthetic features ``f_fake`` (N, D) and a real set's features (M, D)."""
    n_fake, n_real = f_fake.shape[0], real.features.shape[0]
    subset_size = choose_kid_subset_size(cfg, n_fake, n_real, what)
    fid = fid_statistics_to_metric(fid_features_to_statistics(f_fake), real.statistics, verbose=False)
    kid_device = resolve_device(cfg.device, "evaluation.device")
    if kid_device.type == "cuda":  # the same estimator and subsets in torch on the GPU (evaluation/kid.py)
        kid_mean, kid_std = kid_from_features(
            f_fake,
            real.features,
            subsets=cfg.kid_subsets,
            subset_size=subset_size,
            seed=cfg.seed,
            device=kid_device,
        )
        kid = {KEY_METRIC_KID_MEAN: kid_mean, KEY_METRIC_KID_STD: kid_std}
    else:
        kid = kid_features_to_metric(
            f_fake,
            real.features,
            kid_subsets=cfg.kid_subsets,
            kid_subset_size=subset_size,
            rng_seed=cfg.seed,
            verbose=False,
        )
    log.info(
        "FID/KID %s: %d synthetic vs %d real, KID subset size %d x %d subsets, %s@%s, real features %s",
        what,
        n_fake,
        n_real,
        subset_size,
        cfg.kid_subsets,
        spec.name,
        spec.weights_fingerprint,
        "cached" if real.cache_hit else "computed",
    )
    return FidelityResult(
        fid=float(fid[KEY_METRIC_FID]),
        kid_mean=float(kid[KEY_METRIC_KID_MEAN]),
        kid_std=float(kid[KEY_METRIC_KID_STD]),
        n_fake=n_fake,
        n_real=n_real,
        kid_subset_size=subset_size,
        kid_subsets=cfg.kid_subsets,
        extractor=spec.name,
        weights_fingerprint=spec.weights_fingerprint,
        real_cache_name=real.cache_name,
        real_cache_hit=real.cache_hit,
    )


def fid_kid(
    x_fake: torch.Tensor,
    x_real: torch.Tensor,
    extractor: ExtractorSpec,
    cfg: EvaluationConfig,
    device: torch.device,
    real_key: RealSetKey | None = None,
    what: str = "set",
) -> FidelityResult:
    """FID and KID between synthetic ``x_fake`` and real ``x_real`` (uint8 (N, 1|3, H, W)).

    With ``real_key`` the real features are read from / written to ``cfg.cache_dir``; ``what`` names the
    set in logs and errors (e.g. "mix, product A").
    """
    choose_kid_subset_size(cfg, x_fake.shape[0], x_real.shape[0], what)  # fail before extracting anything
    features = FeatureExtractor(extractor, cfg, device)
    real = features.real(x_real, real_key)
    return fid_kid_from_features(features(x_fake), real, extractor, cfg, what)
