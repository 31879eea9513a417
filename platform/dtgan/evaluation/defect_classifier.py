"""The data set's defect classifier (``dtgan-defect-cnn``, trained on the reference split's real images only) as a
judge: its own quality on held-out real images, and defect recall of synthetic images.

Defect recall answers "did the generator paint the defect?" where FID cannot: the share of a product x defect cell's
synthetic images that the classifier assigns to the intended defect type (any product). Beside it, the same
classifier's recall on held-out real defects (the ceiling: what real defects score) and the share of held-out
normals it assigns to the intended type (the floor: what a generator that paints nothing scores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from dtgan import keys
from dtgan.data.labelled import LabelledImages
from dtgan.evaluation.defect_cnn import DefectCNN, defect_cnn_metadata, load_defect_cnn
from dtgan.evaluation.extractors import ExtractorSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefectClassifier:
    """A loaded ``dtgan-defect-cnn`` with the (product, defect) index of each class of its head."""

    net: DefectCNN
    spec: ExtractorSpec
    class_names: list[str]
    class_product: torch.Tensor  # (K,) long
    class_defect: torch.Tensor  # (K,) long
    train_accuracy: float

    @staticmethod
    def load(spec: ExtractorSpec, products: tuple[str, ...], defects: tuple[str, ...]) -> DefectClassifier:
        meta = defect_cnn_metadata(spec.weights_path)
        codes = {f"{p}/{d}": (i, j) for i, p in enumerate(products) for j, d in enumerate(defects)}
        unknown = [name for name in meta["class_names"] if name not in codes]
        if unknown:
            raise ValueError(f"{spec.weights_path}: classes {unknown} are not of this data set")
        pairs = [codes[name] for name in meta["class_names"]]
        return DefectClassifier(
            net=load_defect_cnn(spec.weights_path),
            spec=spec,
            class_names=meta["class_names"],
            class_product=torch.tensor([p for p, _ in pairs], dtype=torch.long),
            class_defect=torch.tensor([d for _, d in pairs], dtype=torch.long),
            train_accuracy=meta["train_accuracy"],
        )

    @torch.no_grad()
    def logits(self, images_uint8: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, K) class logits of uint8 (N, 1|3, H, W) images, on the CPU."""
        if len(images_uint8) == 0:
            return torch.zeros(0, len(self.class_names))
        return torch.cat(
            [self.net(images_uint8[s : s + batch_size])[1] for s in range(0, len(images_uint8), batch_size)]
        )

    def classes(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) the predicted class (index into ``class_names``)."""
        return logits.argmax(1)

    def defects(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) the defect index of the predicted class."""
        return self.class_defect[self.classes(logits)]


def _share(hits: torch.Tensor) -> float | None:
    return float(hits.float().mean()) if hits.numel() else None


def classifier_quality(
    clf: DefectClassifier,
    train: LabelledImages,
    train_fingerprint: str,
    train_split: str,
    holdout: LabelledImages | None,
    holdout_split: str,
    products: tuple[str, ...],
    defects: tuple[str, ...],
) -> dict:
    """Accuracy per class on held-out real images, the classes left out of its head (no training image), and a
    fingerprint of the corpus it saw: the ``defect_classifier`` block of ``evaluation.json``."""
    head = {(int(p), int(d)) for p, d in zip(clf.class_product, clf.class_defect, strict=True)}
    predicted = clf.classes(clf.logits(holdout.images)) if holdout is not None else None
    rows = []
    for p, product in enumerate(products):
        for d, defect in enumerate(defects):
            n_train = int(((train.p == p) & (train.y == d)).sum())
            record: dict = {
                "class": f"{product}/{defect}",
                "in_head": (p, d) in head,
                "train_images": n_train,
            }
            if holdout is not None:
                mine = (holdout.p == p) & (holdout.y == d)
                record["holdout_images"] = int(mine.sum())
                if (p, d) in head and bool(mine.any()):
                    k = clf.class_names.index(f"{product}/{defect}")
                    record["holdout_accuracy"] = _share(predicted[mine] == k)
                    record["holdout_defect_accuracy"] = _share(clf.class_defect[predicted[mine]] == d)
            rows.append(record)
    overall = defect_overall = None
    if holdout is not None:
        in_head = torch.tensor(
            [(int(p), int(y)) in head for p, y in zip(holdout.p, holdout.y, strict=True)], dtype=torch.bool
        )
        codes = {
            (int(p), int(d)): k
            for k, (p, d) in enumerate(zip(clf.class_product, clf.class_defect, strict=True))
        }
        truth = torch.tensor(
            [codes.get((int(p), int(y)), -1) for p, y in zip(holdout.p, holdout.y, strict=True)],
            dtype=torch.long,
        )
        overall = _share((predicted == truth)[in_head])
        defect_overall = _share((clf.class_defect[predicted] == holdout.y)[in_head])
    return {
        "network": clf.spec.name,
        "weights_fingerprint": clf.spec.weights_fingerprint,
        "corpus": {"split": train_split, "fingerprint": train_fingerprint, "images": len(train)},
        "classes_in_head": len(clf.class_names),
        "left_out_classes": [r["class"] for r in rows if not r["in_head"]],
        "train_accuracy": clf.train_accuracy,
        "holdout_split": holdout_split if holdout is not None else None,
        "holdout_images": len(holdout) if holdout is not None else 0,
        "holdout_accuracy": overall,
        "holdout_defect_accuracy": defect_overall,
        "per_class": rows,
    }


def quality_metrics(quality: dict | None) -> dict[str, float]:
    """The classifier's held-out accuracies as MLflow metrics (absent when there is no held-out split)."""
    if not quality:
        return {}
    out = {keys.EVAL_DEFECT_CLASSIFIER_TRAIN_ACCURACY: quality["train_accuracy"]}
    if quality["holdout_accuracy"] is not None:
        out[keys.EVAL_DEFECT_CLASSIFIER_ACCURACY] = quality["holdout_accuracy"]
    return out


def quality_lines(quality: dict | None) -> list[str]:
    """The terminal's view: overall accuracies, the weakest classes, the classes left out."""
    if not quality:
        return []
    acc = quality["holdout_accuracy"]
    head = (
        f"defect classifier {quality['network']}@{quality['weights_fingerprint']}: trained on "
        f"{quality['corpus']['images']} images of {quality['corpus']['split']} "
        f"(corpus {quality['corpus']['fingerprint']}), {quality['classes_in_head']} classes; train accuracy "
        f"{quality['train_accuracy']:.3f}, held-out ({quality['holdout_split']}) accuracy "
        + (f"{acc:.3f}" if acc is not None else "not measured (no held-out split)")
    )
    lines = [head]
    scored = [r for r in quality["per_class"] if r.get("holdout_accuracy") is not None]
    if scored:
        lines.append(
            "  per class (held out): "
            + ", ".join(f"{r['class']} {r['holdout_accuracy']:.2f} (n={r['holdout_images']})" for r in scored)
        )
    if quality["left_out_classes"]:
        lines.append("  no training images, not in its head: " + ", ".join(quality["left_out_classes"]))
    return lines
