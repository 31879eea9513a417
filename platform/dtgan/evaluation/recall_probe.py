"""Defect recall as a cheap intermediate signal: a generator and the evaluation data in, the recall block out.

``probe = DefectRecallProbe(cfg, data)`` loads (or trains once, cached) the data set's defect classifier;
``probe(nets)`` synthesises ``images_per_cell`` latent and reference images per product x defect cell with the
evaluation protocol's seeds and returns :func:`dtgan.evaluation.defect_recall.defect_recall_scores`' block, whose
``metrics`` (``eval/defect_recall_mix`` and the rest, :func:`~dtgan.evaluation.defect_recall.recall_metrics`)
a search can report. One classifier pass per synthetic image; no FID, no feature extractor.
"""

from __future__ import annotations

import time

from dtgan.config.evaluation import EvaluationConfig
from dtgan.evaluation.defect_classifier import DefectClassifier
from dtgan.evaluation.defect_recall import defect_recall_scores, recall_metrics
from dtgan.evaluation.extractors import resolve_defect_classifier
from dtgan.evaluation.inputs import offline_training_images
from dtgan.evaluation.protocol import EvaluationData, build_synthetic_sets


class DefectRecallProbe:
    """``probe(nets) -> dict``: defect recall of a generator on ``data`` (``nets``: loaded inference networks,
    :func:`dtgan.training.checkpoint.load_inference_nets`)."""

    def __init__(self, cfg: EvaluationConfig, data: EvaluationData, images_per_cell: int = 16) -> None:
        self.cfg = cfg.model_copy(update={"images_per_product_per_defect": images_per_cell})
        self.data = data
        spec = resolve_defect_classifier(cfg, lambda: offline_training_images(data))
        self.classifier = DefectClassifier.load(spec, data.products, data.defects)

    def __call__(self, nets) -> dict:
        started = time.perf_counter()
        sets = build_synthetic_sets(nets, self.data, self.cfg)
        recall = defect_recall_scores(self.classifier, sets, self.data)
        recall["metrics"] = recall_metrics(recall)
        recall["images_per_cell"] = self.cfg.images_per_product_per_defect
        recall["wall_s"] = time.perf_counter() - started
        return recall
