"""A cheap FID-mix during training (few images per cell, all products pooled): the early-stopping signal.

It reuses the evaluation protocol (same sources, references, extractor and real-feature cache) with
``study.intermediate_fid_images_per_cell`` synthetic images per product x defect, so it is noisy but
ordered like the final FID-mix. The data and the extractor are loaded once per trial.
"""

from __future__ import annotations

import logging
import time

import torch

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.extractors import resolve_extractor
from dtgan.evaluation.feature_cache import RealSetKey
from dtgan.evaluation.fidelity import fid_kid
from dtgan.evaluation.inputs import load_evaluation_data, offline_training_images
from dtgan.evaluation.protocol import POOLED, build_synthetic_sets
from dtgan.training.checkpoint import load_inference_nets
from dtgan.training.environment import resolve_device

log = logging.getLogger(__name__)


class IntermediateFID:
    """``fid(checkpoint_path) -> float``: FID-mix over all products from a small synthetic set."""

    def __init__(self, cfg: EvaluationConfig, data_path: str, images_per_cell: int) -> None:
        # Few images: the KID subset must fit them (KID is computed alongside FID and ignored here).
        self.cfg = cfg.model_copy(
            update={"images_per_product_per_defect": images_per_cell, "kid_subset_size_min": 2}
        )
        self.data_path = data_path
        self.device = resolve_device(cfg.device, "evaluation.device")
        self._data = None
        self._extractor = None

    def __call__(self, checkpoint_path: str) -> float:
        started = time.perf_counter()
        nets = load_inference_nets(checkpoint_path, device=self.device)
        if self._data is None:
            self._data = load_evaluation_data(
                self.data_path, nets.vocab, self.cfg, nets.config.model.img_size
            )
            self._extractor = resolve_extractor(self.cfg, lambda: offline_training_images(self._data))
        data = self._data
        sets = build_synthetic_sets(nets, data, self.cfg)
        x_fake = torch.cat(
            [
                sets.images[("mix", p, d)]
                for p in range(len(data.products))
                for d in data.defect_indices
                if ("mix", p, d) in sets.images
            ]
        )
        real_rows = torch.isin(data.references.y, torch.tensor(data.defect_indices))
        real_key = RealSetKey(
            data_fingerprint=data.reference_fingerprint,
            split=data.reference_split,
            selection=f"product={keys.SCOPE_ALL};defect={POOLED}",
            img_size=data.img_size,
            extractor=self._extractor.name,
            weights_fingerprint=self._extractor.weights_fingerprint,
        )
        result = fid_kid(
            x_fake,
            data.references.images[real_rows],
            self._extractor,
            self.cfg,
            self.device,
            real_key=real_key,
            what="intermediate mix, all products",
        )
        log.info(
            "intermediate FID-mix %.2f at %s (%d images, %.1f s)",
            result.fid,
            checkpoint_path,
            len(x_fake),
            time.perf_counter() - started,
        )
        return result.fid
