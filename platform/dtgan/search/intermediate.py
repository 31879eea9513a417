"""A cheap FID-mix during training (few images per cell, all products pooled): the early-stopping signal; or, for a
downstream objective, the defect miss rate of a few synthetic images (``study.intermediate_signal=defect_miss``) or
a short downstream study of the checkpoint read on the validation split (``downstream_probe``).

It reuses the evaluation protocol (same sources, references, extractor and real-feature cache) with
``study.intermediate_fid_images_per_cell`` synthetic images per product x defect, so it is noisy but
ordered like the final FID-mix. The data and the extractor are loaded once per trial.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.evaluation import EvaluationConfig
from dtgan.config.root import DTGANConfig
from dtgan.downstream.prepare import prepare_study_data
from dtgan.downstream.study import run_study
from dtgan.evaluation.defect_classifier import DefectClassifier
from dtgan.evaluation.extractors import resolve_defect_classifier, resolve_extractor
from dtgan.evaluation.feature_cache import RealSetKey
from dtgan.evaluation.fidelity import fid_kid
from dtgan.evaluation.inputs import load_evaluation_data, offline_training_images
from dtgan.evaluation.protocol import POOLED, build_synthetic_sets
from dtgan.training.checkpoint import load_inference_nets
from dtgan.training.environment import resolve_device

log = logging.getLogger(__name__)


class _CheckpointSignal:
    """A signal of one checkpoint from a few synthetic images per cell: the evaluation data and the judging network
    (``_load_judge``) are loaded at the first call and kept for the trial."""

    key: str
    cfg_update: dict = {}

    def __init__(self, cfg: EvaluationConfig, data_path: str, images_per_cell: int) -> None:
        self.cfg = cfg.model_copy(
            update={"images_per_product_per_defect": images_per_cell, **self.cfg_update}
        )
        self.data_path = data_path
        self.device = resolve_device(cfg.device, "evaluation.device")
        self._data = None

    def _synthetic_sets(self, checkpoint_path: str):
        """(evaluation data, the checkpoint's synthetic sets)."""
        nets = load_inference_nets(checkpoint_path, device=self.device)
        if self._data is None:
            self._data = load_evaluation_data(
                self.data_path, nets.vocab, self.cfg, nets.config.model.img_size
            )
            self._load_judge(self._data)
        return self._data, build_synthetic_sets(nets, self._data, self.cfg)

    def _load_judge(self, data) -> None:
        raise NotImplementedError


class IntermediateFID(_CheckpointSignal):
    """``fid(checkpoint_path) -> float``: FID-mix over all products from a small synthetic set."""

    key = keys.SEARCH_INTERMEDIATE_FID
    # Few images: the KID subset must fit them (KID is computed alongside FID and ignored here).
    cfg_update = {"kid_subset_size_min": 2}

    def _load_judge(self, data) -> None:
        self._extractor = resolve_extractor(self.cfg, lambda: offline_training_images(data))

    def __call__(self, checkpoint_path: str) -> float:
        started = time.perf_counter()
        data, sets = self._synthetic_sets(checkpoint_path)
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


class IntermediateDefectMiss(_CheckpointSignal):
    """``miss(checkpoint_path) -> float``: % of a small synthetic mix set (all products) that the data set's defect
    classifier, trained on real images only, does not assign to the intended defect type (100 - defect recall).

    A stand-in for the downstream classifier's error: a generator whose defects a classifier of real defects
    cannot recognise cannot teach one either. It costs one classifier pass over the images, no training."""

    key = keys.SEARCH_INTERMEDIATE_DEFECT_MISS

    def _load_judge(self, data) -> None:
        spec = resolve_defect_classifier(self.cfg, lambda: offline_training_images(data))
        self._classifier = DefectClassifier.load(spec, data.products, data.defects)

    def __call__(self, checkpoint_path: str) -> float:
        started = time.perf_counter()
        _, sets = self._synthetic_sets(checkpoint_path)
        miss = defect_miss_pct(self._classifier, sets)
        log.info(
            "intermediate defect miss %.1f%% at %s (%.1f s)",
            miss,
            checkpoint_path,
            time.perf_counter() - started,
        )
        return miss


def defect_miss_pct(classifier: DefectClassifier, sets) -> float:
    """% of the ('mix', product, defect) images whose predicted defect type is not the intended one."""
    hits, total = 0, 0
    for (guidance, _, defect), images in sorted(sets.images.items()):
        if guidance != "mix" or not len(images):
            continue
        predicted = classifier.defects(classifier.logits(images))
        hits += int((predicted == defect).sum())
        total += len(images)
    return 100.0 * (1.0 - hits / max(total, 1))


class IntermediateDownstreamProbe:
    """``error(checkpoint_path) -> float``: the validation error % (mean over ``study.intermediate_probe_seeds``
    classifier seeds) of the trial's downstream study on the checkpoint, restricted to its mix arm and its first
    training-set size, scope and defect source: a classifier trained on the generator's synthetic defects and real
    normals, judged on real validation images. The test split the objective is measured on is not used.

    It measures what the objective measures, at the cost of one short classifier training per seed."""

    key = keys.SEARCH_INTERMEDIATE_PROBE

    def __init__(self, config: DTGANConfig) -> None:
        self.config = config
        downstream = config.downstream
        self.cfg = downstream.model_copy(
            update={
                "arms": ("mix",),
                "num_seeds": config.study.intermediate_probe_seeds,
                "normal_images_per_product": downstream.normal_images_per_product[:1],
                "products": downstream.products[:1],
                "defect_sources": downstream.defect_sources[:1],
            }
        )
        self.device = resolve_device(downstream.device, "downstream.device")

    def __call__(self, checkpoint_path: str) -> float:
        started = time.perf_counter()
        nets = load_inference_nets(checkpoint_path, device=self.device)
        data = prepare_study_data(
            self.cfg,
            self.config.data.path,
            nets=nets,
            checkpoint=str(checkpoint_path),
            crop_paste_cfg=self.config.crop_paste,
        )
        del nets
        with tempfile.TemporaryDirectory(prefix="dtgan-probe-") as folder:
            (row,) = run_study(self.cfg, data.save(Path(folder) / "study_data.pt"))["rows"]
        log.info(
            "intermediate probe: validation error %.2f%% at %s (%d classifier seed(s), %.1f s)",
            row["val_error_pct_mean"],
            checkpoint_path,
            len(row["seeds"]),
            time.perf_counter() - started,
        )
        return row["val_error_pct_mean"]


def intermediate_signal(config: DTGANConfig, images_per_cell: int):
    """The study's early-stopping signal (``study.intermediate_signal``): a callable checkpoint -> value (lower is
    better) with the Tune result key it reports under as ``.key``."""
    signal = config.study.intermediate_signal
    if signal == "downstream_probe":
        return IntermediateDownstreamProbe(config)
    kind = IntermediateDefectMiss if signal == "defect_miss" else IntermediateFID
    return kind(config.evaluation, config.data.path, images_per_cell)
