"""Nothing the evaluation reads can run code: Inception weights are hash-checked before anything reads them and
then read with ``weights_only=True``; real-feature caches are ``.npz`` read with ``allow_pickle=False``."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from eval_testdata import labelled_set
from test_eval_fidelity import _cfg, _key, _training_images
from test_eval_inception import random_inception_weights  # noqa: F401  (fixture)

from dtgan.config.evaluation import INCEPTION_WEIGHTS_SHA256, EvaluationConfig
from dtgan.errors import ConfigError
from dtgan.evaluation.extractors import INCEPTION, INCEPTION_WEIGHTS_FILE, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_images, sha256_file
from dtgan.evaluation.fidelity import FeatureExtractor, fid_kid

CPU = torch.device("cpu")


class _Payload:
    """Unpickling this writes a marker file: proof that a loader executed code from the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(path, marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"Conv2d_1a_3x3.conv.weight": _Payload(str(marker))}, fh)


def _no_training_images():
    pytest.fail("Inception needs no training images")


def test_pickle_payload_as_configured_inception_weights_is_refused_unread(tmp_path):
    weights, marker = tmp_path / "evil.pth", tmp_path / "PWNED"
    _plant(weights, marker)
    cfg = EvaluationConfig(inception_weights_path=str(weights), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="evil.pth: SHA-256 .* is not that of the Inception weights") as err:
        resolve_extractor(cfg, _no_training_images)
    assert "\n" not in str(err.value) and not marker.exists()


def test_pickle_payload_in_the_hub_cache_is_refused_by_auto(tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    _plant(tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE, marker)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(ConfigError, match=f"{INCEPTION_WEIGHTS_FILE}: SHA-256"):
        resolve_extractor(EvaluationConfig(cache_dir=str(tmp_path / "cache")), _no_training_images)
    assert not marker.exists()


def test_payload_with_a_matching_configured_hash_is_still_not_unpickled(tmp_path):
    weights, marker = tmp_path / "own.pth", tmp_path / "PWNED"
    _plant(weights, marker)
    cfg = EvaluationConfig(
        inception_weights_path=str(weights),
        inception_weights_sha256=sha256_file(weights),
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(ConfigError, match="own.pth: not a tensors-only weights file"):
        resolve_extractor(cfg, _no_training_images)
    assert not marker.exists()


def test_random_bytes_as_inception_weights_fail_before_any_work(tmp_path):
    weights = tmp_path / "random.pth"
    weights.write_bytes(np.random.default_rng(0).bytes(4096))
    cfg = EvaluationConfig(inception_weights_path=str(weights), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="random.pth: SHA-256"):
        resolve_extractor(cfg, _no_training_images)


def test_the_default_hash_is_the_published_one():
    # torch hub names files by the hash's first 8 hex digits: weights-inception-2015-12-05-<6726825d>.pth
    assert INCEPTION_WEIGHTS_SHA256.startswith(INCEPTION_WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0])
    assert len(INCEPTION_WEIGHTS_SHA256) == 64


def test_real_inception_weights_with_their_hash_run(random_inception_weights, tmp_path):  # noqa: F811
    cfg = EvaluationConfig(
        inception_weights_path=str(random_inception_weights),
        cache_dir=str(tmp_path),
        inception_weights_sha256=sha256_file(random_inception_weights),
        batch_size=4,
    )
    spec = resolve_extractor(cfg, _no_training_images)
    x, _ = labelled_set(1, seed=0)
    assert spec.name == INCEPTION and FeatureExtractor(spec, cfg, CPU)(x).shape == (3, 2048)


def test_real_features_are_cached_as_npz_and_planted_pickles_are_never_read(tmp_path):
    cfg = _cfg(tmp_path)
    spec = resolve_extractor(cfg, _training_images)
    x_real, _ = labelled_set(15, seed=3)
    x_fake, _ = labelled_set(10, seed=4)
    key = _key(fingerprint_images([str(i) for i in range(45)], x_real), spec)
    cache = tmp_path / "fidelity"
    marker = tmp_path / "PWNED"
    # torch-fidelity's own cache name for this input: a planted pickle there must never be unpickled.
    _plant(cache / f"{key.cache_name()}-{spec.name}-features-{spec.feature_layer}.pt", marker)

    first = fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=key)
    npz = cache / f"{key.cache_name()}-{spec.name}-features-{spec.feature_layer}.npz"
    assert first.real_cache_hit is False and npz.is_file() and not marker.exists()
    with np.load(npz, allow_pickle=False) as stored:
        assert stored["features"].shape == (45, 128) and stored["features"].dtype == np.float32
    second = fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=key)
    assert second.real_cache_hit is True and second.fid == pytest.approx(first.fid, rel=1e-6)

    # An .npz holding a pickled object array (or garbage) is not loaded: the features are computed again.
    np.savez(open(npz, "wb"), features=np.array([_Payload(str(marker))], dtype=object))
    third = fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=key)
    assert (
        third.real_cache_hit is False
        and third.fid == pytest.approx(first.fid, rel=1e-6)
        and not marker.exists()
    )
    npz.write_bytes(b"not a zip")
    assert fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=key).real_cache_hit is False
