"""IS and IC-LPIPS: the clustering and averaging, the LPIPS package's distance, the weights' safety
checks, the offline "not computed" path, and IS through torch-fidelity.

LPIPS trunks here are untrained (no weights can be had offline): the numbers test the formula and the plumbing,
never a value to report.
"""

from __future__ import annotations

import hashlib
import socket

import pytest
import torch
import torch_fidelity
from eval_testdata import labelled_set
from torchvision.models import alexnet

from dtgan import keys
from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig
from dtgan.errors import ConfigError
from dtgan.evaluation import ic_lpips as ic
from dtgan.evaluation.diversity import COMPUTED, diversity_scores, inception_score
from dtgan.evaluation.extractors import DEFECT_CNN, ClassLabelledImages, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_images
from dtgan.evaluation.fidelity import FeatureExtractor, UInt8Images

CPU = torch.device("cpu")


def _valued(values: list[int], side: int = 4) -> torch.Tensor:
    """uint8 (N, 3, side, side) images, image i filled with values[i]."""
    return torch.tensor(values, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, side, side).contiguous()


def _mean_value(images: torch.Tensor) -> torch.Tensor:
    """An injected 1-d embedding: the image's mean value (distance = squared difference)."""
    return images.float().mean(dim=(1, 2, 3)).unsqueeze(1)


def test_metric_keys_follow_the_fidelity_pattern():
    assert keys.is_key("mix") == "eval/is_mix"
    assert keys.is_key("latent", "A") == "eval/is_latent_A"
    assert keys.ic_lpips_key("mix", "metal nut", "scratch") == "eval/ic_lpips_mix_metal-nut.scratch"
    assert keys.ic_lpips_key("reference", defect="spot") == "eval/ic_lpips_reference.spot"
    with pytest.raises(ValueError, match="guidance"):
        keys.is_key("both")


def test_clusters_are_nearest_real_images_and_singletons_score_zero():
    real = _valued([0, 100])
    fake = _valued([1, 2, 3, 105])  # cluster 0: 1, 2, 3; cluster 1: 105
    result = ic.ic_lpips(fake, real, _mean_value)
    assert result.cluster_sizes == [3, 1]
    # cluster 0: pairs (1,2)=1, (1,3)=4, (2,3)=1 -> 2; cluster 1 (one image) -> 0, as DFMGAN's code
    assert result.ic_lpips == pytest.approx(1.0)
    assert result.ic_lpips_nonzero == pytest.approx(2.0) and result.clusters_with_pairs == 1
    capped = ic.ic_lpips(fake, real, _mean_value, max_per_cluster=2)  # the first two assigned: 1, 2
    assert capped.ic_lpips == pytest.approx(0.5)
    chunked = ic.ic_lpips(fake, real, _mean_value, batch_size=1, chunk_bytes=8)  # blocks of 2 images
    assert chunked.as_dict() == result.as_dict()


def test_ic_lpips_of_identical_images_is_zero_and_grows_with_diversity():
    embed = ic.LpipsEmbedder(None, CPU)  # the lpips package's network, untrained trunk
    real, _ = labelled_set(2, seed=0)
    base = real[:1].expand(12, -1, -1, -1)
    scores = []
    for spread in (0.0, 20.0, 60.0):
        noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(1)) * spread
        fake = (base.float() + noise).round().clamp(0, 255).to(torch.uint8)
        scores.append(ic.ic_lpips(fake, real, embed, batch_size=4).ic_lpips)
    assert scores[0] == 0.0
    assert 0.0 < scores[1] < scores[2]


def test_the_embedding_distance_is_the_lpips_package_forward():
    embed = ic.LpipsEmbedder(None, CPU)
    a, _ = labelled_set(2, seed=3)
    b, _ = labelled_set(2, seed=4)
    with torch.no_grad():
        expected = embed.network(a.float() / 127.5 - 1, b.float() / 127.5 - 1).flatten().double()
    got = (embed(a) - embed(b)).double().pow(2).sum(dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def trunk_file(tmp_path_factory):
    """An untrained AlexNet trunk saved like torchvision's file, and its SHA-256."""
    torch.manual_seed(0)
    state = {k: v for k, v in alexnet().state_dict().items() if k.startswith("features.")}
    path = tmp_path_factory.mktemp("trunk") / "alexnet-untrained.pth"
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_offline_without_weights_ic_lpips_is_not_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    reason = ic.resolve_lpips(EvaluationConfig())
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert reason == f"not computed: no LPIPS weights at {expected}"
    vgg = ic.resolve_lpips(EvaluationConfig(lpips_backbone="vgg"))
    assert vgg.endswith("vgg16-397923af.pth")
    assert ic.resolve_lpips(EvaluationConfig(ic_lpips=False)) == "not computed: evaluation.ic_lpips=false"
    with pytest.raises(ConfigError, match="nope.pth does not exist"):
        ic.resolve_lpips(EvaluationConfig(lpips_weights_path=str(tmp_path / "nope.pth")))


def test_weights_of_another_hash_are_refused_before_reading(trunk_file):
    path, _ = trunk_file
    with pytest.raises(ConfigError, match="is not that of torchvision's alexnet-owt-7be5be79.pth"):
        ic.resolve_lpips(EvaluationConfig(lpips_weights_path=str(path)))


def test_weights_with_the_published_hash_prefix_are_loaded_into_the_trunk(trunk_file, tmp_path, monkeypatch):
    path, digest = trunk_file
    monkeypatch.setitem(ic.LPIPS_WEIGHTS_FILES, "alex", f"alexnet-test-{digest[:8]}.pth")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / ic.LPIPS_WEIGHTS_FILES["alex"]).symlink_to(path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise AssertionError("LPIPS tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    spec = ic.resolve_lpips(EvaluationConfig())
    assert isinstance(spec, ic.LpipsSpec) and spec.label == f"alex/{digest[:16]}"
    embed = ic.LpipsEmbedder(spec, CPU)
    saved = torch.load(path, weights_only=True)
    trunk = embed.network.net.state_dict()
    torch.testing.assert_close(trunk["slice1.0.weight"], saved["features.0.weight"])
    torch.testing.assert_close(trunk["slice5.10.bias"], saved["features.10.bias"])


def test_a_pickle_with_code_is_never_unpickled(tmp_path, monkeypatch):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("unpickled",))

    import pickle

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"features.0.weight": Boom()}))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(ic.LPIPS_WEIGHTS_FILES, "alex", f"alexnet-test-{digest[:8]}.pth")
    with pytest.raises(ConfigError, match="not a tensors-only weights file"):
        ic.resolve_lpips(EvaluationConfig(lpips_weights_path=str(path)))


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    cfg = EvaluationConfig(
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        feature_extractor=DEFECT_CNN,
        defect_cnn=DefectCNNConfig(epochs=2, batch_size=16, min_steps=0),
        is_splits=2,
    )
    images, labels = labelled_set(30, 0)
    ids = [f"r{i}" for i in range(len(labels))]
    data = ClassLabelledImages(images, labels, ["p/a", "p/b", "p/c"], fingerprint_images(ids, images))
    return cfg, resolve_extractor(cfg, lambda: data)


def test_inception_score_is_torch_fidelitys_on_the_extractors_logits(offline):
    cfg, spec = offline
    x_fake, _ = labelled_set(10, seed=5)  # 30 images
    reference = torch_fidelity.calculate_metrics(
        input1=UInt8Images(x_fake),
        isc=True,
        isc_splits=2,
        rng_seed=cfg.seed,
        cuda=False,
        batch_size=cfg.batch_size,
        feature_extractor=spec.name,
        feature_extractor_weights_path=spec.weights_path,
        save_cpu_ram=True,
        verbose=False,
    )
    logits = FeatureExtractor(spec, cfg, CPU, with_logits=True).extract(x_fake)[spec.logits_layer]
    assert logits.shape == (30, 3)  # the offline extractor's product x defect classes
    score = inception_score(logits, cfg)
    assert score["is_splits"] == 2
    assert score["is_mean"] == pytest.approx(reference[torch_fidelity.KEY_METRIC_ISC_MEAN])
    assert score["is_std"] == pytest.approx(reference[torch_fidelity.KEY_METRIC_ISC_STD])
    assert inception_score(logits[:12], cfg)["is_splits"] == 1  # at least 10 images per split


def _diversity(cfg, spec, lpips, embed):
    images, labels = labelled_set(6, seed=7)  # kinds 0 (normal), 1, 2: 6 images each
    products, defects = ("A", "B"), ("normal", "scratch", "spot")
    cells = {
        (g, p, d): images[labels == d][: 4 + p] for g in keys.GUIDANCES for p in range(2) for d in (1, 2)
    }
    logits = {
        cell: torch.randn(len(x), 3, generator=torch.Generator().manual_seed(1)) for cell, x in cells.items()
    }
    real_p = torch.arange(len(labels)) % 2
    real_p[labels == 2] = 0  # no real 'spot' images of B
    return diversity_scores(
        cells, logits, (images, labels, real_p), products, defects, [1, 2], spec, lpips, embed, cfg
    )


def test_records_cover_cells_products_and_all_and_average_ic_lpips_over_cells(offline):
    cfg, spec = offline
    records = _diversity(cfg, spec, ic.LpipsSpec("alex", "untrained", "0" * 16), _mean_value)
    by_key = {r["ic_lpips_key"]: r for r in records}
    assert len(records) == 3 * 3 * 3  # guidances x (all, A, B) x (pooled, scratch, spot)
    cell_a = by_key[keys.ic_lpips_key("mix", "A", "scratch")]
    assert cell_a["ic_lpips_status"] == COMPUTED and cell_a["ic_lpips_backbone"] == "alex/" + "0" * 16
    assert cell_a["n_fake"] == 4 and cell_a["is_key"] == keys.is_key("mix", "A", "scratch")
    missing = by_key[keys.ic_lpips_key("mix", "B", "spot")]
    assert (
        missing["ic_lpips"] is None
        and missing["ic_lpips_status"] == "not computed: no real 'spot' images of B"
    )
    product_b = by_key[keys.ic_lpips_key("mix", "B")]
    assert product_b["ic_lpips_cells"] == 1
    assert product_b["ic_lpips"] == by_key[keys.ic_lpips_key("mix", "B", "scratch")]["ic_lpips"]
    scored = [
        by_key[keys.ic_lpips_key("mix", p, d)]["ic_lpips"]
        for p, d in [("A", "scratch"), ("A", "spot"), ("B", "scratch")]
    ]
    assert by_key[keys.ic_lpips_key("mix")]["ic_lpips"] == pytest.approx(sum(scored) / 3)
    assert by_key[keys.ic_lpips_key("mix")]["n_fake"] == 4 + 4 + 5 + 5
    assert all(r["extractor"] == DEFECT_CNN for r in records)


def test_without_lpips_weights_every_record_says_not_computed_and_holds_no_number(offline):
    cfg, spec = offline
    reason = "not computed: no LPIPS weights at /nowhere/alexnet-owt-7be5be79.pth"
    records = _diversity(cfg, spec, reason, None)
    assert {r["ic_lpips_status"] for r in records} == {reason}
    assert all(r["ic_lpips"] is None and r["ic_lpips_backbone"] is None for r in records)
    assert all(r["is_mean"] >= 1.0 for r in records)  # IS does not need LPIPS
