"""The pretrained extractor's head: position-free pooling, the local defect head, the defect evidence appended to
the FID feature at a balanced scale, and files of either design loading as they were written."""

from __future__ import annotations

import math

import pytest
import torch

from dtgan.config.evaluation import PretrainedCNNConfig
from dtgan.data import corpus as corpus_mod
from dtgan.evaluation import pretrained_cnn as pretrained_mod
from dtgan.evaluation.defect_cnn import DefectCNN, defect_evidence, load_defect_cnn, save_defect_cnn


def _images(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 32, 32), generator=g, dtype=torch.uint8)


def test_defect_evidence_is_each_types_best_cell():
    local = torch.zeros(1, 3, 2, 2)  # normal + two defect types over 2 x 2 cells
    local[0, 1, 1, 0] = 4.0  # one cell looks like type 1
    local[0, 2, 0, 1] = 1.0
    evidence = defect_evidence(local)
    log_p = torch.log_softmax(local, 1)
    assert evidence.shape == (1, 2)
    assert torch.allclose(evidence[0, 0], log_p[0, 1, 1, 0]) and torch.allclose(
        evidence[0, 1], log_p[0, 2, 0, 1]
    )
    assert float(evidence[0, 0]) > math.log(0.9)  # the defect-like cell, not the mean over the image


def test_the_fid_feature_is_the_feature_layer_then_the_scaled_evidence():
    torch.manual_seed(0)
    net = DefectCNN(12, 16, 32, (8, 8, 16), norm=True, pool="avgmax", local_classes=6).eval()
    net.evidence_scale.fill_(3.0)
    x = _images(4)
    features, logits = net(x)
    layer, class_logits, local = net.parts(x)
    assert features.shape == (4, 16 + 5) and local.shape == (4, 6, 4, 4)
    assert torch.equal(features[:, :16], layer) and torch.equal(logits, class_logits)
    assert torch.allclose(features[:, 16:], 3.0 * defect_evidence(local))
    assert torch.equal(net.forward_features(x), features)


def test_avgmax_pooling_hardly_minds_where_a_pattern_sits():
    x = torch.zeros(1, 1, 32, 32, dtype=torch.uint8)
    moved = x.clone()
    x[..., 0:8, 0:8] = 255  # the same bright square in two different cells of the 4 x 4 map
    moved[..., 24:32, 16:24] = 255

    def relative_change(pool: str) -> float:
        torch.manual_seed(0)
        net = DefectCNN(4, 8, 32, (4, 4, 8), pool=pool).eval()
        with torch.no_grad():
            a, b = net(x)[0], net(moved)[0]
        return float((a - b).norm() / a.norm())

    # zero padding makes it not exactly invariant; keeping the cells in place is not invariant at all
    assert relative_change("avgmax") < 0.01 < relative_change("flatten")


def test_balance_evidence_gives_the_evidence_its_share_of_the_variance():
    torch.manual_seed(0)
    net = DefectCNN(12, 16, 32, (8, 8, 16), norm=True, pool="avgmax", local_classes=6).eval()
    x = _images(64, seed=1)
    for share in (1.0, pretrained_mod.EVIDENCE_SHARE):
        scale = pretrained_mod.balance_evidence(net, x, share)
        assert scale > 0 and float(net.evidence_scale) == scale
        with torch.no_grad():
            features = net(x)[0]
        layer_spread = features[:, :16].var(0).sum()
        evidence_spread = features[:, 16:].var(0).sum()
        assert torch.allclose(share * layer_spread, evidence_spread, rtol=1e-4)
    # the default: the evidence weighs more than the feature layer (photographs' content swamped it at 1)
    assert pretrained_mod.EVIDENCE_SHARE > 1.0
    assert pretrained_mod.balance_evidence(net, x) == pytest.approx(scale)


def test_a_saved_network_loads_with_its_head_and_scale(tmp_path):
    torch.manual_seed(0)
    net = DefectCNN(12, 16, 32, (8, 8, 16), norm=True, pool="avgmax", local_classes=6).eval()
    net.evidence_scale.fill_(5.5)
    path = tmp_path / "net.pt"
    save_defect_cnn(net, 12, path, [f"c{i}" for i in range(12)], 0.5)
    again = load_defect_cnn(path)
    assert (again.pool, again.local_classes, float(again.evidence_scale)) == ("avgmax", 6, 5.5)
    x = _images(3)
    with torch.no_grad():
        assert torch.equal(again(x)[0], net(x)[0])


def test_a_file_written_before_the_local_head_loads_as_it_was(tmp_path):
    torch.manual_seed(0)
    old = DefectCNN(6, 16, 32, (8, 8, 16)).eval()
    payload = {  # the keys such files have: no pool, no local head
        "arch_version": 1,
        "num_classes": 6,
        "feature_dim": 16,
        "input_size_px": 32,
        "widths": [8, 8, 16],
        "norm": False,
        "class_names": [f"c{i}" for i in range(6)],
        "train_accuracy": 0.5,
        "state_dict": old.state_dict(),
    }
    torch.save(payload, tmp_path / "old.pt")
    net = load_defect_cnn(tmp_path / "old.pt")
    assert (net.pool, net.local_classes) == ("flatten", 0)
    x = _images(2)
    with torch.no_grad():
        assert torch.equal(net(x)[0], old(x)[0]) and net(x)[0].shape == (2, 16)


def test_the_default_recipe_is_the_one_the_check_sets_measured():
    """docs/offline-metrics.md ("Corpus version 3 and the evidence share") measured this recipe on the three check
    sets; changing any of it is a new network whose ladder must be measured again."""
    cfg = PretrainedCNNConfig()
    assert (cfg.images_per_class, cfg.min_boldness, cfg.max_boldness, cfg.render_sides) == (
        360,
        1.0,
        3.0,
        [32, 64, 128],
    )
    assert (cfg.pool, cfg.local_weight, cfg.defect_weight, cfg.epochs, cfg.lr) == (
        "avgmax",
        1.0,
        2.0,
        4,
        2e-3,
    )
    assert corpus_mod.CorpusSpec().images_per_class == cfg.images_per_class
    assert (corpus_mod.CORPUS_VERSION, pretrained_mod.TRAINER_VERSION) == (3, 4)
    assert pretrained_mod.EVIDENCE_SHARE == 16.0 and corpus_mod.DARK_SHARE == 0.4
    assert len(corpus_mod.backgrounds()) == 14
