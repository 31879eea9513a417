"""The defect classifier as a judge on tiny data: its head holds only classes with images, its held-out quality is
recorded per class, and defect recall is 1 for real defect images and about nothing for normals."""

from __future__ import annotations

import pytest
import torch
from tiny_eval_data import tiny_data

from dtgan import keys
from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig
from dtgan.evaluation import defect_recall as recall_mod
from dtgan.evaluation.defect_classifier import (
    DefectClassifier,
    classifier_quality,
    quality_lines,
    quality_metrics,
)
from dtgan.evaluation.extractors import DEFECT_CNN, ClassLabelledImages, resolve_defect_classifier
from dtgan.evaluation.inputs import offline_training_images
from dtgan.evaluation.protocol import SyntheticSets

LEFT_OUT = (1, 2)  # product B has no spot in the training split


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    data, _ = tiny_data(skip=(LEFT_OUT,))
    cfg = EvaluationConfig(
        cache_dir=str(tmp_path_factory.mktemp("cache")),
        feature_extractor=DEFECT_CNN,
        defect_cnn=DefectCNNConfig(epochs=1, batch_size=16, min_steps=200, lr=3e-3),
    )
    spec = resolve_defect_classifier(cfg, lambda: offline_training_images(data))
    return data, DefectClassifier.load(spec, data.products, data.defects)


def test_classes_without_images_are_never_in_the_head():
    data, _ = tiny_data(n_per_cell=2, skip=(LEFT_OUT,))
    corpus = offline_training_images(data)
    assert corpus.class_names == ["A/normal", "A/scratch", "A/spot", "B/normal", "B/scratch"]
    assert sorted(torch.unique(corpus.labels).tolist()) == list(range(5))
    # each row keeps its own class
    for label, p, y in zip(corpus.labels, data.references.p, data.references.y, strict=True):
        assert corpus.class_names[int(label)] == f"{data.products[int(p)]}/{data.defects[int(y)]}"
    assert isinstance(corpus, ClassLabelledImages)


def test_quality_is_per_class_on_held_out_images_with_the_corpus_fingerprint(judged):
    data, clf = judged
    quality = classifier_quality(
        clf,
        data.references,
        data.reference_fingerprint,
        "gan_train",
        data.holdout,
        "val",
        data.products,
        data.defects,
    )
    assert quality["classes_in_head"] == 5 and quality["left_out_classes"] == ["B/spot"]
    assert quality["corpus"] == {
        "split": "gan_train",
        "fingerprint": data.reference_fingerprint,
        "images": 120,
    }
    by_class = {r["class"]: r for r in quality["per_class"]}
    assert by_class["B/spot"]["in_head"] is False and "holdout_accuracy" not in by_class["B/spot"]
    assert by_class["B/spot"]["holdout_images"] == 10 and by_class["B/spot"]["train_images"] == 0
    for name in ("A/normal", "A/scratch", "A/spot", "B/normal", "B/scratch"):
        assert by_class[name]["holdout_images"] == 10 and by_class[name]["train_images"] == 24
        assert 0.0 <= by_class[name]["holdout_accuracy"] <= 1.0
    assert quality["train_accuracy"] >= 0.9  # it learnt its training images
    # the overall figure counts only classes the head can name, and matches a direct count
    predicted = clf.classes(clf.logits(data.holdout.images))
    names = [clf.class_names[int(k)] for k in predicted]
    truth = [
        f"{data.products[int(p)]}/{data.defects[int(y)]}" for p, y in zip(data.holdout.p, data.holdout.y)
    ]
    kept = [(a, b) for a, b in zip(names, truth, strict=True) if b != "B/spot"]
    assert quality["holdout_accuracy"] == pytest.approx(sum(a == b for a, b in kept) / len(kept))
    assert quality["holdout_accuracy"] > 2 / quality["classes_in_head"]  # well above chance
    assert quality_metrics(quality)[keys.EVAL_DEFECT_CLASSIFIER_ACCURACY] == quality["holdout_accuracy"]
    lines = quality_lines(quality)
    assert "held-out (val) accuracy" in lines[0] and data.reference_fingerprint in lines[0]
    assert lines[-1].endswith("not in its head: B/spot")


def _sets(images: dict) -> SyntheticSets:
    sets = SyntheticSets()
    sets.images.update(images)
    return sets


def test_defect_recall_is_one_for_real_defects_and_about_nothing_for_normals(judged):
    data, clf = judged
    r = data.references  # real defect images the classifier was trained on
    cells = [(0, 1), (0, 2), (1, 1)]  # the cells it knows
    real = _sets({("mix", p, d): r.images[(r.p == p) & (r.y == d)] for p, d in cells})
    nothing = _sets({("mix", p, d): data.sources.images[data.sources.p == p][:24] for p, d in cells})
    real_scores = recall_mod.defect_recall_scores(clf, real, data)
    nothing_scores = recall_mod.defect_recall_scores(clf, nothing, data)
    pooled = real_scores["records"][0]
    assert pooled["product"] == keys.SCOPE_ALL and pooled["key"] == keys.defect_recall_key("mix")
    assert pooled["recall"] >= 0.95 and pooled["n"] == 72
    chance = 1 / (len(data.defects) - 1)
    assert nothing_scores["records"][0]["recall"] <= chance / 2
    # the floor is that share on the normal sources, whatever the synthetic images are
    assert nothing_scores["records"][0]["floor"] == pytest.approx(nothing_scores["records"][0]["recall"])
    # the ceiling: the same classifier on held-out real defects of these cells, a direct count
    h = data.holdout
    rows = torch.isin(h.p, torch.tensor([0, 1])) & torch.isin(h.y, torch.tensor([1, 2]))
    assert pooled["ceiling"] == pytest.approx(
        float((clf.defects(clf.logits(h.images)) == h.y)[rows].float().mean())
    )
    metrics = recall_mod.recall_metrics(real_scores)
    assert metrics[keys.defect_recall_key("mix", "A", "scratch")] >= 0.95
    assert metrics[keys.EVAL_DEFECT_RECALL_CEILING] == pooled["ceiling"]
    assert metrics[keys.EVAL_DEFECT_RECALL_FLOOR] == pooled["floor"]
    assert recall_mod.recall_lines(real_scores)[0].lstrip().startswith("mix")


def test_recall_of_a_left_out_cell_is_the_share_painted_as_that_type(judged):
    data, clf = judged
    h = data.holdout
    spots = h.images[(h.p == 1) & (h.y == 2)]  # B/spot: not in the head, A/spot is
    scores = recall_mod.defect_recall_scores(clf, _sets({("mix", 1, 2): spots}), data)
    cell = next(r for r in scores["records"] if r["defect"] == "spot")
    assert cell["recall"] == pytest.approx(float((clf.defects(clf.logits(spots)) == 2).float().mean()))
    assert cell["key"] == keys.defect_recall_key("mix", "B", "spot")


def test_logits_of_the_fid_pass_are_reused_not_recomputed(judged, monkeypatch):
    data, clf = judged
    images = data.holdout.images[:6]
    sets = _sets({("latent", 0, 1): images, ("reference", 0, 1): images})
    sets.mix_rows[(0, 1)] = (torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]))
    sets.images[("mix", 0, 1)] = images
    given = {("latent", 0, 1): clf.logits(images), ("reference", 0, 1): clf.logits(images)}
    calls = []
    original = DefectClassifier.logits
    monkeypatch.setattr(
        DefectClassifier, "logits", lambda self, x, *a: calls.append(len(x)) or original(self, x)
    )
    out = recall_mod.synthetic_logits(clf, sets, given)
    assert calls == [] and torch.equal(
        out[("mix", 0, 1)], torch.cat([given[("latent", 0, 1)][:3], given[("reference", 0, 1)][3:]])
    )
    recall_mod.synthetic_logits(clf, sets, None)
    assert calls == [6, 6]  # one pass per latent and reference image; the mix rows are taken from them
