"""The pretrained offline extractor ``dtgan-pretrained-cnn`` on a tiny corpus: it is the default without
Inception, it is cached and reused, a changed corpus retrains it, it passes the validity ladder on the tiny data,
and a pinned file is used as it is."""

from __future__ import annotations

import pytest
import torch
from tiny_eval_data import tiny_data

from dtgan.config.evaluation import EvaluationConfig, PretrainedCNNConfig
from dtgan.data import corpus as corpus_mod
from dtgan.errors import ConfigError
from dtgan.evaluation import extractors as extractors_mod
from dtgan.evaluation import ladder as ladder_mod
from dtgan.evaluation import pretrained_cnn as pretrained_mod
from dtgan.evaluation.defect_cnn import DefectCNN, load_defect_cnn, save_defect_cnn
from dtgan.evaluation.extractors import DEFECT_CNN, PRETRAINED_CNN, ExtractorSpec, resolve_extractor
from dtgan.evaluation.feature_cache import fingerprint_file
from dtgan.evaluation.fidelity import FeatureExtractor

CPU = torch.device("cpu")


def tiny_corpus(cache_dir, **overrides) -> PretrainedCNNConfig:
    """A corpus of every background x 6 defect classes x 32 images at 32 px, a thin network, 5 epochs: seconds to
    train (it learns little of the corpus' classes in so few steps; what it must do here is order the ladder)."""
    fields = dict(
        cache_dir=str(cache_dir),
        images_per_class=32,
        render_sides=[32],
        widths=[8, 16, 32],
        feature_dim=32,
        epochs=5,
        lr=3e-3,
        batch_size=32,
    )
    fields.update(overrides)
    return PretrainedCNNConfig(**fields)


def eval_cfg(cache_dir, pretrained: PretrainedCNNConfig, **overrides) -> EvaluationConfig:
    fields = dict(
        cache_dir=str(cache_dir),
        kid_subset_size_min=4,
        kid_subsets=20,
        ladder_min_images=6,
        pretrained_cnn=pretrained,
        inception_weights_path=None,
    )
    fields.update(overrides)
    return EvaluationConfig(**fields)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    cfg = eval_cfg(root / "eval", tiny_corpus(root / "weights"))
    with pytest.MonkeyPatch.context() as mp:  # whatever the machine's torch hub holds: no Inception here
        mp.setattr(extractors_mod, "hub_inception_weights", lambda: root / "absent.pth")
        return cfg, resolve_extractor(cfg, lambda: pytest.fail("the pretrained network needs no data set"))


def test_the_corpus_is_seeded_and_has_every_background_and_defect():
    spec = corpus_mod.CorpusSpec(images_per_class=3, render_sides=(32, 64))
    corpus = corpus_mod.render_corpus(spec)
    images, labels, names = corpus.images, corpus.labels, corpus.names
    assert images.shape == (3 * len(names), 1, 32, 32) and images.dtype == torch.uint8
    assert len(names) == len(corpus_mod.backgrounds()) * 6 >= 10 * 6
    assert "woven/normal" in names and "dead_leaves/stain" in names
    assert torch.equal(torch.bincount(labels), torch.full((len(names),), 3))
    again = corpus_mod.render_corpus(spec)
    assert torch.equal(images, again.images) and torch.equal(corpus.masks, again.masks)
    other = corpus_mod.render_corpus(corpus_mod.CorpusSpec(images_per_class=3, render_sides=(32, 64), seed=1))
    assert not torch.equal(images, other.images)
    assert spec.key() != corpus_mod.CorpusSpec(images_per_class=3, render_sides=(32, 64), seed=1).key()


def test_the_corpus_masks_cover_the_defect_and_nothing_on_normals():
    spec = corpus_mod.CorpusSpec(images_per_class=4, render_sides=(32, 64))
    corpus = corpus_mod.render_corpus(spec)
    assert corpus.masks.shape == (len(corpus.labels), 32, 32) and corpus.masks.dtype == torch.float32
    assert 0.0 <= float(corpus.masks.min()) and float(corpus.masks.max()) <= 1.0
    normal = corpus.labels % 6 == 0
    assert float(corpus.masks[normal].abs().sum()) == 0.0
    covered = corpus.masks[~normal].flatten(1).sum(1)
    assert bool((covered > 0).all())  # every defect image marks where its defect is
    assert float(covered.max()) < 0.8 * 32 * 32  # and not the whole image (a large stain covers up to ~60 %)
    # the chunk renderer gives the masks at the output side, as shares of each pixel
    images, masks = corpus_mod._render_chunk(spec, 0, 1 + list(corpus_mod.DEFECTS).index("spot"), 0, 4)
    assert images.shape == masks.shape == (4, 32, 32) and float(masks.min()) >= 0.0 and masks.sum() > 0


def test_cell_labels_follow_the_masks():
    masks = torch.zeros(2, 32, 32)
    masks[0, 0:8, 24:32] = 1.0  # the top-right 8 x 8 cell of a 4 x 4 grid
    cells = pretrained_mod.cell_labels(masks, torch.tensor([3, 2]), 4)
    assert cells.shape == (2, 4, 4)
    assert int(cells[0, 0, 3]) == 3 and int(cells[0].sum()) == 3  # one defect cell, of the image's type
    assert int(cells[1].abs().sum()) == 0  # no mask: every cell normal, whatever the image's label


def test_auto_without_inception_is_the_pretrained_network(pretrained):
    cfg, spec = pretrained
    assert cfg.feature_extractor == "auto" and spec.name == PRETRAINED_CNN
    assert spec.weights_fingerprint == fingerprint_file(spec.weights_path)
    meta = pretrained_mod.pretrained_metadata(spec.weights_path)
    classes = len(corpus_mod.class_names())
    assert meta["corpus_images"] == 32 * classes and meta["num_classes"] == classes
    assert meta["corpus_key"] == pretrained_mod.corpus_spec(cfg.pretrained_cnn).key()
    # its quality on a corpus of another seed is part of the record
    assert 0.0 <= meta["heldout_accuracy"] <= 1.0 and 0.0 <= meta["heldout_defect_accuracy"] <= 1.0
    # the feature layer (32) and the evidence of each of the five defect types
    assert FeatureExtractor(spec, cfg, CPU)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 32 + 5)
    assert meta["evidence_scale"] > 0


def test_cached_weights_are_reused_and_a_changed_corpus_retrains(monkeypatch, tmp_path):
    cfg = tiny_corpus(tmp_path, images_per_class=4, epochs=1)
    trained = []
    original = pretrained_mod.pretrain
    monkeypatch.setattr(pretrained_mod, "pretrain", lambda c, p: trained.append(p) or original(c, p))
    first = pretrained_mod.ensure_pretrained_cnn(cfg)
    assert trained == [first]
    assert pretrained_mod.ensure_pretrained_cnn(cfg) == first and len(trained) == 1  # read back, not trained
    other = pretrained_mod.ensure_pretrained_cnn(cfg.model_copy(update={"corpus_seed": 1}))
    assert trained == [first, other] and other != first
    assert fingerprint_file(other) != fingerprint_file(first)
    assert (
        pretrained_mod.pretrained_metadata(other)["corpus_key"]
        != pretrained_mod.pretrained_metadata(first)["corpus_key"]
    )
    # a new corpus version (the generator's rendering changed) is a new corpus too
    monkeypatch.setattr(corpus_mod, "CORPUS_VERSION", corpus_mod.CORPUS_VERSION + 1)
    assert pretrained_mod.pretrained_path(cfg) != first
    # a cache file that does not load is trained again, not trusted
    monkeypatch.setattr(corpus_mod, "CORPUS_VERSION", corpus_mod.CORPUS_VERSION - 1)
    first.write_bytes(b"truncated")
    assert pretrained_mod.ensure_pretrained_cnn(cfg) == first and len(trained) == 3
    load_defect_cnn(first)


def test_a_changed_generator_code_changes_the_key(pretrained, monkeypatch):
    cfg, spec = pretrained
    assert str(pretrained_mod.pretrained_path(cfg.pretrained_cnn)) == spec.weights_path
    monkeypatch.setattr(pretrained_mod, "code_fingerprint", lambda: "0" * 16)
    assert str(pretrained_mod.pretrained_path(cfg.pretrained_cnn)) != spec.weights_path


def test_the_pretrained_network_passes_the_ladder_on_tiny_data(pretrained):
    data, bank = tiny_data()
    cfg, spec = pretrained
    out = ladder_mod.validity_ladder(data, FeatureExtractor(spec, cfg, CPU), cfg, bank)
    assert out["extractor"] == PRETRAINED_CNN
    assert out["verdict"] == "pass" and out["failing"] == [], out["message"]
    for record in out["scopes"]:
        fid = {name: scores["fid"] for name, scores in record["rungs"].items()}
        assert fid["paints_nothing"] > max(fid["floor"], fid["crop_paste"])
        assert record["checks"]["fid"]["floor_best"]
        assert record["checks"]["fid"]["separation"] >= cfg.ladder_min_separation


def test_random_weights_under_the_pretrained_name_are_flagged(pretrained, tmp_path):
    data, bank = tiny_data()
    cfg, _ = pretrained
    torch.manual_seed(1)
    classes = len(corpus_mod.class_names())
    net = DefectCNN(classes, 32, 32, (8, 16, 32))
    path = tmp_path / "random.pt"
    save_defect_cnn(net, classes, path, [f"c{i}" for i in range(classes)], 0.0)
    broken = ExtractorSpec(PRETRAINED_CNN, str(path), fingerprint_file(path))
    out = ladder_mod.validity_ladder(data, FeatureExtractor(broken, cfg, CPU), cfg, bank)
    assert out["failing"] and ladder_mod.CANNOT_TELL in out["message"]
    assert out["message"].startswith(PRETRAINED_CNN)


def test_a_pinned_file_is_used_as_it_is(pretrained, tmp_path):
    cfg, spec = pretrained
    pinned = cfg.model_copy(
        update={
            "pretrained_cnn": cfg.pretrained_cnn.model_copy(
                update={"weights_path": spec.weights_path, "cache_dir": str(tmp_path / "empty")}
            )
        }
    )
    assert resolve_extractor(pinned, lambda: pytest.fail("no data set")) == spec
    assert not (tmp_path / "empty").exists()  # nothing trained
    missing = pinned.model_copy(
        update={
            "pretrained_cnn": pinned.pretrained_cnn.model_copy(update={"weights_path": str(tmp_path / "x")})
        }
    )
    with pytest.raises(ConfigError, match="pretrained_cnn.weights_path: .* does not exist"):
        resolve_extractor(missing, lambda: None)
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    junk = pinned.model_copy(
        update={
            "pretrained_cnn": pinned.pretrained_cnn.model_copy(
                update={"weights_path": str(tmp_path / "junk.pt")}
            )
        }
    )
    with pytest.raises(ConfigError, match="is not dtgan-pretrained-cnn weights"):
        resolve_extractor(junk, lambda: None)


def test_the_per_data_set_network_stays_selectable(pretrained):
    data, _ = tiny_data()
    cfg, spec = pretrained
    from dtgan.config.evaluation import DefectCNNConfig
    from dtgan.evaluation.inputs import offline_training_images

    own = cfg.model_copy(
        update={"feature_extractor": DEFECT_CNN, "defect_cnn": DefectCNNConfig(epochs=1, min_steps=5)}
    )
    other = resolve_extractor(own, lambda: offline_training_images(data))
    assert other.name == DEFECT_CNN and other.weights_fingerprint != spec.weights_fingerprint
    assert load_defect_cnn(other.weights_path).classifier.out_features == 6  # the data set's own classes


def test_fine_tuning_on_the_data_set_is_cached_and_recorded(pretrained, monkeypatch):
    from dtgan.evaluation import fine_tune as fine_tune_mod
    from dtgan.evaluation.inputs import offline_training_images

    data, _ = tiny_data()
    cfg, base = pretrained
    tuned_cfg = cfg.model_copy(
        update={
            "pretrained_cnn": cfg.pretrained_cnn.model_copy(update={"fine_tune": True, "fine_tune_steps": 10})
        }
    )
    tuned = resolve_extractor(tuned_cfg, lambda: offline_training_images(data))
    assert tuned.name == PRETRAINED_CNN and tuned.weights_fingerprint != base.weights_fingerprint
    net = load_defect_cnn(tuned.weights_path)
    assert net.classifier.out_features == 6 and net.norm  # the data set's classes, the pretrained trunk
    record = tuned.as_dict()["pretrained"]
    assert record["fine_tune_steps"] == 10 and record["base_fingerprint"] == base.weights_fingerprint
    assert record["corpus_key"] == pretrained_mod.corpus_spec(cfg.pretrained_cnn).key()  # the base's corpus
    monkeypatch.setattr(
        fine_tune_mod, "DefectCNN", lambda *a, **k: pytest.fail("fine-tuned once, then cached")
    )
    assert resolve_extractor(tuned_cfg, lambda: offline_training_images(data)) == tuned
