"""FID and KID through torch-fidelity's ``calculate_metrics``, with the real set's features cached under a
key we build ourselves (data, split, selection, image size, extractor, weights)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset

from dtgan.config.evaluation import EvaluationConfig
from dtgan.errors import DataError
from dtgan.evaluation.extractors import ExtractorSpec, register_extractors
from dtgan.evaluation.feature_cache import RealSetKey, is_cached

log = logging.getLogger(__name__)


class UInt8Images(Dataset):
    """torch-fidelity's input: items are bare uint8 (3, H, W) tensors; gray images are repeated to 3 channels."""

    def __init__(self, images_uint8: torch.Tensor) -> None:
        if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4 or images_uint8.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 (N, 1|3, H, W), got {images_uint8.dtype} {tuple(images_uint8.shape)}")
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


def choose_kid_subset_size(cfg: EvaluationConfig, n_fake: int, n_real: int, what: str) -> int:
    """A15: min(kid_subset_size_max, n_real, n_fake); an error naming the set when that is below the minimum."""
    size = min(cfg.kid_subset_size_max, n_fake, n_real)
    if size < cfg.kid_subset_size_min:
        raise DataError(
            f"{what}: {n_real} real and {n_fake} synthetic images, KID needs at least "
            f"evaluation.kid_subset_size_min={cfg.kid_subset_size_min} of each; add real images of this set, "
            f"raise evaluation.images_per_product_per_defect, or lower evaluation.kid_subset_size_min"
        )
    return size


def fid_kid(x_fake: torch.Tensor, x_real: torch.Tensor, extractor: ExtractorSpec, cfg: EvaluationConfig,
            device: torch.device, real_key: RealSetKey | None = None, what: str = "set") -> FidelityResult:
    """FID and KID between synthetic ``x_fake`` and real ``x_real`` (uint8 (N, 1|3, H, W)).

    With ``real_key`` the real features are read from / written to ``cfg.cache_dir``; ``what`` names the
    set in logs and errors (e.g. "mix, product A").
    """
    register_extractors()
    n_fake, n_real = x_fake.shape[0], x_real.shape[0]
    subset_size = choose_kid_subset_size(cfg, n_fake, n_real, what)
    cache_root = Path(cfg.cache_dir).expanduser() / "fidelity"
    cache_name = real_key.cache_name() if real_key is not None else None
    hit = cache_name is not None and is_cached(cache_root, cache_name, extractor.name, [extractor.feature_layer])
    metrics = torch_fidelity.calculate_metrics(
        input1=UInt8Images(x_fake),
        input2=UInt8Images(x_real),
        fid=True,
        kid=True,
        # torch-fidelity ignores unknown keys (device= does nothing) and defaults cuda to True.
        cuda=device.type == "cuda",
        batch_size=cfg.batch_size,
        kid_subset_size=subset_size,
        kid_subsets=cfg.kid_subsets,
        rng_seed=cfg.seed,
        feature_extractor=extractor.name,
        feature_extractor_weights_path=extractor.weights_path,
        cache=cache_name is not None,
        cache_root=str(cache_root),
        input2_cache_name=cache_name,
        save_cpu_ram=True,  # no DataLoader worker processes
        verbose=False,
    )
    log.info("FID/KID %s: %d synthetic vs %d real, KID subset size %d x %d subsets, %s@%s, real features %s",
             what, n_fake, n_real, subset_size, cfg.kid_subsets, extractor.name, extractor.weights_fingerprint,
             "cached" if hit else "computed")
    return FidelityResult(
        fid=float(metrics[torch_fidelity.KEY_METRIC_FID]),
        kid_mean=float(metrics[torch_fidelity.KEY_METRIC_KID_MEAN]),
        kid_std=float(metrics[torch_fidelity.KEY_METRIC_KID_STD]),
        n_fake=n_fake,
        n_real=n_real,
        kid_subset_size=subset_size,
        kid_subsets=cfg.kid_subsets,
        extractor=extractor.name,
        weights_fingerprint=extractor.weights_fingerprint,
        real_cache_name=cache_name,
        real_cache_hit=hit,
    )
