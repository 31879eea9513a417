"""The Inception path runs offline from a local weights file.

The weights here are randomly initialised (He init), so the numbers are deterministic but MEANINGLESS: this
tests the plumbing (weights path, fingerprint, 2048-d layer, tiny sets), never FID values.
"""

from __future__ import annotations

import pytest
import torch
from eval_testdata import labelled_set
from torch import nn
from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.extractors import INCEPTION, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_file, sha256_file
from dtgan.evaluation.fidelity import fid_kid


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    # Build the extractor without its download and without loading a state dict, then He-init and save.
    patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
    patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    patch.undo()
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, generator=generator)
    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_runs_offline_from_a_local_weights_file(random_inception_weights, tmp_path):
    cfg = EvaluationConfig(
        inception_weights_path=str(random_inception_weights),
        cache_dir=str(tmp_path),
        inception_weights_sha256=sha256_file(random_inception_weights),
        kid_subset_size_min=2,
        kid_subsets=5,
        batch_size=4,
    )
    spec = resolve_extractor(cfg, training_images=lambda: pytest.fail("Inception needs no training images"))
    assert spec.name == INCEPTION and spec.weights_fingerprint == fingerprint_file(random_inception_weights)
    x_a, _ = labelled_set(1, seed=0)  # 3 images: Inception runs at about 10 images/s on a CPU
    x_b, _ = labelled_set(1, seed=1)
    result = fid_kid(x_a, x_b, spec, cfg, torch.device("cpu"))
    assert result.extractor == INCEPTION and result.kid_subset_size == 3
    assert torch.isfinite(torch.tensor([result.fid, result.kid_mean])).all()


def test_auto_prefers_inception_from_the_hub_cache(random_inception_weights, tmp_path, monkeypatch):
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "weights-inception-2015-12-05-6726825d.pth").symlink_to(random_inception_weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = EvaluationConfig(
        cache_dir=str(tmp_path / "cache"), inception_weights_sha256=sha256_file(random_inception_weights)
    )
    spec = resolve_extractor(cfg, training_images=lambda: pytest.fail("Inception needs no training images"))
    assert spec.name == INCEPTION and spec.weights_path.startswith(str(hub))
