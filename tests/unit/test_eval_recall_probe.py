"""DefectRecallProbe: a generator and the evaluation data in, the defect recall block (with its metrics) out,
the classifier loaded once; an untrained generator that paints nothing scores near the floor, not the ceiling."""

from __future__ import annotations

import pytest
import torch
from tiny_eval_data import tiny_data

from dtgan import keys
from dtgan.config import load_config
from dtgan.config.evaluation import DefectCNNConfig, EvaluationConfig
from dtgan.evaluation import recall_probe as probe_mod
from dtgan.models import build_nets
from dtgan.training.checkpoint import InferenceNets


def _nets() -> InferenceNets:
    config = load_config("tiny", ["model.ablation=f"])
    torch.manual_seed(0)
    built = build_nets(config.model, num_domains=3, num_products=2)
    parts = {name: built[name].eval() for name in ("generator", "mapping_network", "style_encoder")}
    return InferenceNets(config=config, vocab=None, step=0, **parts)


def test_the_probe_scores_a_generator_with_one_classifier(tmp_path, monkeypatch):
    data, _ = tiny_data()
    cfg = EvaluationConfig(
        cache_dir=str(tmp_path), defect_cnn=DefectCNNConfig(epochs=6, batch_size=16, min_steps=150)
    )
    probe = probe_mod.DefectRecallProbe(cfg, data, images_per_cell=8)
    monkeypatch.setattr(
        probe_mod, "resolve_defect_classifier", lambda *a: pytest.fail("the classifier is loaded once")
    )
    nets = _nets()
    first, again = probe(nets), probe(nets)
    assert first["images_per_cell"] == 8 and first["records"] == again["records"]  # seeded
    metrics = first["metrics"]
    assert set(metrics) >= {keys.defect_recall_key("mix", None), keys.EVAL_DEFECT_RECALL_CEILING}
    pooled = next(r for r in first["records"] if r["guidance"] == "mix" and r["product"] == keys.SCOPE_ALL)
    assert pooled["n"] == 8 * 2 * 2  # 8 images x 2 products x 2 defect types
    # an untrained generator paints no defect the classifier recognises: far below real defects
    assert pooled["recall"] < pooled["ceiling"]
    assert first["classifier"].startswith("dtgan-defect-cnn@")
