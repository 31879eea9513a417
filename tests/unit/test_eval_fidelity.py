"""FID/KID through torch-fidelity with the offline extractor: sanity of the numbers, KID subset size, the cache."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
import torch
import torch_fidelity
from eval_testdata import KINDS, labelled_set

from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig, PretrainedCNNConfig
from dtgan.errors import ConfigError, DataError
from dtgan.evaluation import defect_cnn
from dtgan.evaluation.extractors import DEFECT_CNN, PRETRAINED_CNN, ClassLabelledImages, resolve_extractor
from dtgan.evaluation.feature_cache import RealSetKey, fingerprint_images
from dtgan.evaluation.feature_files import FeatureWriter
from dtgan.evaluation.fidelity import FeatureExtractor, UInt8Images, choose_kid_subset_size, fid_kid
from dtgan.evaluation.protocol import SyntheticSets, synthetic_features
from dtgan.keys import FEATURES_DIR, generated_features_file, real_features_file

CPU = torch.device("cpu")


def _training_images(seed: int = 0) -> ClassLabelledImages:
    images, labels = labelled_set(60, seed)
    ids = [f"r{i}" for i in range(len(labels))]
    return ClassLabelledImages(images, labels, [f"p/{k}" for k in KINDS], fingerprint_images(ids, images))


def _cfg(cache_dir, **overrides) -> EvaluationConfig:
    fields = dict(
        cache_dir=str(cache_dir),
        feature_extractor=DEFECT_CNN,
        kid_subset_size_min=10,
        kid_subsets=20,
        defect_cnn=DefectCNNConfig(epochs=3, batch_size=16, min_steps=0),
    )
    fields.update(overrides)
    return EvaluationConfig(**fields)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    cfg = _cfg(tmp_path_factory.mktemp("cache"))
    return cfg, resolve_extractor(cfg, _training_images)


def _key(data_fingerprint: str, spec) -> RealSetKey:
    return RealSetKey(data_fingerprint, "gan_train", "all", 32, spec.name, spec.weights_fingerprint)


def test_fid_of_a_set_against_itself_is_zero(offline):
    cfg, spec = offline
    x, _ = labelled_set(40, seed=5)
    result = fid_kid(x, x, spec, cfg, CPU)
    assert abs(result.fid) < 1e-3
    # (KID's unbiased estimator is not ~0 for identical sets: equal samples fall in both subsets.)


def test_fid_and_kid_grow_with_a_brightness_shift(offline):
    cfg, spec = offline
    x_real, _ = labelled_set(40, seed=7)
    x_fake, _ = labelled_set(40, seed=8)  # same distribution, other images
    fids, kids = [], []
    for shift in (0, 15, 40, 80):
        shifted = (x_fake.int() + shift).clamp(0, 255).to(torch.uint8)
        result = fid_kid(shifted, x_real, spec, cfg, CPU)
        fids.append(result.fid)
        kids.append(result.kid_mean)
    assert fids == sorted(fids) and fids[-1] > 5 * fids[0], fids
    assert kids == sorted(kids) and kids[-1] > kids[0], kids


def test_kid_subset_size_is_the_smaller_set_and_too_few_images_name_the_set(tmp_path):
    cfg = _cfg(tmp_path, kid_subset_size_max=1000, kid_subset_size_min=20)
    assert choose_kid_subset_size(cfg, n_fake=300, n_real=35, what="mix, product C") == 35
    assert choose_kid_subset_size(cfg, n_fake=2000, n_real=1500, what="x") == 1000
    with pytest.raises(DataError, match=r"mix, product C: 12 real .*kid_subset_size_min"):
        choose_kid_subset_size(cfg, n_fake=300, n_real=12, what="mix, product C")


def test_result_records_extractor_sizes_and_subset_size(offline):
    cfg, spec = offline
    x_real, _ = labelled_set(12, seed=1)  # 36 images
    x_fake, _ = labelled_set(20, seed=2)  # 60 images
    result = fid_kid(x_fake, x_real, spec, cfg, CPU)
    assert (result.n_fake, result.n_real, result.kid_subset_size) == (60, 36, 36)
    assert result.extractor == DEFECT_CNN and result.weights_fingerprint == spec.weights_fingerprint


class _CountImages:
    """Counts the images that go through the offline network (a spy, the network still runs)."""

    def __init__(self, monkeypatch):
        self.count = 0
        original = defect_cnn.DefectCNN.forward

        def forward(net, x_uint8):
            self.count += x_uint8.shape[0]
            return original(net, x_uint8)

        monkeypatch.setattr(defect_cnn.DefectCNN, "forward", forward)


def test_real_features_are_cached_and_invalidated_by_data_or_weights(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    spec = resolve_extractor(cfg, _training_images)
    x_real, _ = labelled_set(15, seed=3)  # 45 images
    x_fake, _ = labelled_set(10, seed=4)  # 30 images
    spy = _CountImages(monkeypatch)
    data_fp = fingerprint_images([str(i) for i in range(45)], x_real)

    first = fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=_key(data_fp, spec))
    assert (first.real_cache_hit, spy.count) == (False, 75)
    second = fid_kid(x_fake, x_real, spec, cfg, CPU, real_key=_key(data_fp, spec))
    assert (second.real_cache_hit, spy.count) == (True, 105)  # only the 30 synthetic images
    assert second.fid == pytest.approx(first.fid, rel=1e-6)

    # Other data behind the same split name: a new key, computed again.
    x_other = x_real.clone()
    x_other[0, :, 0, 0] += 1
    other_fp = fingerprint_images([str(i) for i in range(45)], x_other)
    assert other_fp != data_fp
    third = fid_kid(x_fake, x_other, spec, cfg, CPU, real_key=_key(other_fp, spec))
    assert (third.real_cache_hit, spy.count) == (False, 180)

    # Other weights (another seed): a new fingerprint, computed again.
    cfg_seed = _cfg(tmp_path, defect_cnn=DefectCNNConfig(epochs=3, batch_size=16, min_steps=0, seed=1))
    spec_seed = resolve_extractor(cfg_seed, _training_images)
    assert spec_seed.weights_fingerprint != spec.weights_fingerprint
    count_before = spy.count
    fourth = fid_kid(x_fake, x_real, spec_seed, cfg_seed, CPU, real_key=_key(data_fp, spec_seed))
    assert fourth.real_cache_hit is False and spy.count - count_before == 75


def test_offline_extractor_runs_without_network_and_warns(tmp_path, monkeypatch, caplog):
    def no_network(*args, **kwargs):
        raise OSError("network is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    tiny_corpus = PretrainedCNNConfig(
        cache_dir=str(tmp_path / "pretrained"),
        images_per_class=4,
        render_sides=[32],
        widths=[8, 16, 32],
        feature_dim=16,
        epochs=1,
    )
    cfg = _cfg(tmp_path / "cache", feature_extractor="auto", pretrained_cnn=tiny_corpus)
    with caplog.at_level(logging.WARNING):
        spec = resolve_extractor(cfg, lambda: pytest.fail("the pretrained network needs no data set"))
    # no Inception: the network pre-trained on the procedural corpus, trained here without any download
    assert spec.name == PRETRAINED_CNN and len(spec.weights_fingerprint) == 16
    assert any("NOT comparable" in r.message for r in caplog.records)
    x, _ = labelled_set(10, seed=9)
    assert fid_kid(x, x, spec, cfg, CPU).fid < 1e-3


def test_offline_extractor_is_trained_once_per_data_set(tmp_path):
    cfg = _cfg(tmp_path)
    calls = []

    def images():
        calls.append(1)
        return _training_images()

    first = resolve_extractor(cfg, images)
    second = resolve_extractor(cfg, images)
    assert first == second and len(calls) == 2  # the data is fingerprinted each time ...
    net = defect_cnn.load_defect_cnn(first.weights_path)
    assert net.feature.out_features == 128
    other = resolve_extractor(cfg, lambda: _training_images(seed=1))
    assert other.weights_path != first.weights_path  # ... and other data gets its own weights


def test_offline_extractor_training_is_deterministic(tmp_path):
    data = _training_images()
    cfg = DefectCNNConfig(epochs=2, min_steps=0)
    a, acc_a = defect_cnn.train_defect_cnn(data.images, data.labels, 3, cfg)
    b, acc_b = defect_cnn.train_defect_cnn(data.images, data.labels, 3, cfg)
    assert acc_a == acc_b
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_offline_extractor_learns_the_defect_classes():
    data = _training_images()
    _, accuracy = defect_cnn.train_defect_cnn(
        data.images, data.labels, 3, DefectCNNConfig(epochs=6, batch_size=16, min_steps=0)
    )
    assert accuracy > 0.85


def test_inception_requested_without_weights_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    cfg = _cfg(tmp_path, feature_extractor="inception-v3-compat")
    with pytest.raises(ConfigError, match="inception_weights_path") as err:
        resolve_extractor(cfg, _training_images)
    assert "\n" not in str(err.value)
    missing = _cfg(tmp_path, inception_weights_path=str(tmp_path / "nope.pth"), feature_extractor="auto")
    with pytest.raises(ConfigError, match="nope.pth does not exist"):
        resolve_extractor(missing, _training_images)


def test_fid_and_kid_from_features_equal_torch_fidelity_calculate_metrics(offline):
    cfg, spec = offline
    x_real, _ = labelled_set(15, seed=11)  # 45 images
    x_fake, _ = labelled_set(12, seed=12)  # 36 images
    reference = torch_fidelity.calculate_metrics(
        input1=UInt8Images(x_fake),
        input2=UInt8Images(x_real),
        fid=True,
        kid=True,
        cuda=False,
        batch_size=cfg.batch_size,
        kid_subset_size=36,
        kid_subsets=cfg.kid_subsets,
        rng_seed=cfg.seed,
        feature_extractor=spec.name,
        feature_extractor_weights_path=spec.weights_path,
        save_cpu_ram=True,
        verbose=False,
    )
    result = fid_kid(x_fake, x_real, spec, cfg, CPU)
    assert result.kid_subset_size == 36
    assert result.fid == reference[torch_fidelity.KEY_METRIC_FID]
    assert result.kid_mean == reference[torch_fidelity.KEY_METRIC_KID_MEAN]
    assert result.kid_std == reference[torch_fidelity.KEY_METRIC_KID_STD]


def test_each_synthetic_image_goes_through_the_extractor_once(offline, monkeypatch):
    cfg, spec = offline
    latent, _ = labelled_set(4, seed=20)  # 12 images per cell
    reference, _ = labelled_set(4, seed=21)
    from_latent, from_reference = torch.tensor([5, 0, 7, 2, 11, 3]), torch.tensor([1, 9, 4, 8, 6, 10])
    sets = SyntheticSets(
        images={
            ("latent", 0, 1): latent,
            ("reference", 0, 1): reference,
            ("mix", 0, 1): torch.cat([latent[from_latent], reference[from_reference]]),
        },
        mix_rows={(0, 1): (from_latent, from_reference)},
    )
    features = FeatureExtractor(spec, cfg, CPU)
    spy = _CountImages(monkeypatch)
    out = synthetic_features(sets, features)
    assert spy.count == 24  # latent + reference; the mix set's rows are theirs
    torch.testing.assert_close(out[("mix", 0, 1)], features(sets.images[("mix", 0, 1)]), rtol=1e-5, atol=1e-6)
    assert out[("latent", 0, 1)].shape == (12, 128) and out[("latent", 0, 1)].dtype == torch.float32


def test_feature_writer_saves_float32_rows_atomically(tmp_path):
    writer = FeatureWriter(tmp_path / FEATURES_DIR)
    features = torch.arange(12, dtype=torch.float64).reshape(4, 3) / 7
    writer(generated_features_file("mix", "all"), features)
    saved = np.load(tmp_path / FEATURES_DIR / "gen_mix_all.npy")
    assert saved.dtype == np.float32 and np.array_equal(saved, features.numpy().astype(np.float32))
    assert sorted(p.name for p in (tmp_path / FEATURES_DIR).iterdir()) == ["gen_mix_all.npy"]  # no temp files
    assert writer.summary()["files"] == {"gen_mix_all.npy": [4, 3]}
    with pytest.raises(ValueError, match="expected a .npy name"):
        writer(real_features_file("all"), torch.zeros(3))
