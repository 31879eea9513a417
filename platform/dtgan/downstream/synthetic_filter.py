"""Quality filtering of the generator's images before they reach the classifier (``downstream.synthetic_filter``).

With ``defect_classifier`` each synthetic set is rendered 1/keep times as large (sources reused round-robin,
fresh latent codes or references per candidate) and the ``count`` candidates that the data set's defect classifier
gives the highest probability of the intended defect type are kept, in their rendering order. The judge is the
network of defect recall (``dtgan-defect-cnn``, trained on the real images of the evaluation's reference split
only, cached by :func:`dtgan.evaluation.extractors.resolve_defect_classifier`), so no test image shapes the
selection. The defect type's probability is summed over the classifier's product classes: a cell the classifier
never saw (an unseen product x defect) is judged by the defect as it looks on the other products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dtgan.data.dataset import DefectImageDataset
from dtgan.errors import DataError
from dtgan.evaluation.defect_classifier import DefectClassifier
from dtgan.evaluation.extractors import ClassLabelledImages, resolve_defect_classifier
from dtgan.evaluation.feature_cache import fingerprint_images


@dataclass(frozen=True)
class DefectScorer:
    """The probability that the data set's defect classifier gives an image's intended defect type."""

    classifier: DefectClassifier

    @property
    def name(self) -> str:
        return f"{self.classifier.spec.name}@{self.classifier.spec.weights_fingerprint}"

    def __call__(self, images_uint8: torch.Tensor, defect: int, defect_name: str) -> torch.Tensor:
        """(N,) P(defect type ``defect``) of uint8 (N, 1|3, H, W) images: softmax mass of its product classes."""
        columns = self.classifier.class_defect == defect
        if not bool(columns.any()):
            raise DataError(
                f"the defect classifier {self.name} has no class of defect '{defect_name}' (no real training "
                "image of it in any product) and cannot judge it; set downstream.synthetic_filter=none"
            )
        return self.classifier.logits(images_uint8).softmax(1)[:, columns].sum(1)


def load_defect_scorer(nets, data_path: str) -> DefectScorer:
    """The defect classifier of ``nets``' evaluation config on ``data_path``'s reference split at the GAN's size:
    the cached network defect recall uses (trained now, on real images only, when missing)."""
    evaluation = nets.config.evaluation
    products, defects = tuple(nets.vocab.products), tuple(nets.vocab.defects)
    size = nets.config.model.img_size

    def training_images() -> ClassLabelledImages:
        refs = DefectImageDataset(data_path, splits=(evaluation.reference_split,), img_size=size).labelled()
        return ClassLabelledImages.from_labelled(
            refs, products, defects, fingerprint_images(refs.ids, refs.images)
        )

    spec = resolve_defect_classifier(evaluation, training_images)
    return DefectScorer(DefectClassifier.load(spec, products, defects))


def candidates_for(count: int, keep: float) -> int:
    """How many candidates to render so that keeping the best fraction ``keep`` leaves ``count`` images."""
    return max(count, math.ceil(round(count / keep, 9)))


def keep_best(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` highest ``scores`` (ties: the earlier candidate), in ascending order."""
    order = sorted(range(scores.numel()), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(sorted(order[:count]), dtype=torch.long)
