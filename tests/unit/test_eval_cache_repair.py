"""A corrupt evaluation cache entry (the offline extractor's weights, a real set's features) is discarded with a
warning and rebuilt, instead of failing every later evaluation."""

from __future__ import annotations

from pathlib import Path

import torch
from eval_testdata import KINDS, labelled_set

from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig
from dtgan.evaluation import defect_cnn
from dtgan.evaluation.extractors import DEFECT_CNN, ClassLabelledImages, resolve_extractor
from dtgan.evaluation.feature_cache import RealSetKey, fingerprint_images, read_cached_features
from dtgan.evaluation.fidelity import fid_kid

CPU = torch.device("cpu")


def _training_images() -> ClassLabelledImages:
    images, labels = labelled_set(30, 0)
    ids = [f"r{i}" for i in range(len(labels))]
    return ClassLabelledImages(images, labels, [f"p/{k}" for k in KINDS], fingerprint_images(ids, images))


def test_corrupt_cache_entries_are_rebuilt_with_a_warning(tmp_path, caplog):
    cfg = EvaluationConfig(
        cache_dir=str(tmp_path),
        feature_extractor=DEFECT_CNN,
        kid_subset_size_min=10,
        kid_subsets=5,
        defect_cnn=DefectCNNConfig(epochs=1, batch_size=16, min_steps=0),
    )
    spec = resolve_extractor(cfg, _training_images)
    weights = Path(spec.weights_path)
    weights.write_bytes(b"truncated")  # a crash or a full disk mid-copy, or a planted file
    again = resolve_extractor(cfg, _training_images)
    assert "unreadable" in caplog.text and "building it again" in caplog.text
    assert Path(again.weights_path) == weights and defect_cnn.load_defect_cnn(weights) is not None

    x_real, _ = labelled_set(5, seed=3)
    x_fake, _ = labelled_set(5, seed=4)
    key = RealSetKey(
        fingerprint_images([str(i) for i in range(15)], x_real),
        "gan_train",
        "all",
        32,
        spec.name,
        spec.weights_fingerprint,
    )
    first = fid_kid(x_fake, x_real, again, cfg, CPU, real_key=key)
    [features] = list((tmp_path / "fidelity").glob("*.npz"))
    features.write_bytes(b"PK\x03\x04 not a zip")
    caplog.clear()
    second = fid_kid(x_fake, x_real, again, cfg, CPU, real_key=key)
    assert "unreadable" in caplog.text and second.real_cache_hit is False
    assert second.fid == first.fid and read_cached_features(features) is not None  # rewritten whole
