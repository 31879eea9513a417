"""The default offline FID feature network ``dtgan-pretrained-cnn``: the small CNN of
:mod:`dtgan.evaluation.defect_cnn` pre-trained once on the procedural corpus (:mod:`dtgan.data.corpus`), never on
the images being judged.

A network trained only on a data set's own ``gan_train`` split can be too weak to tell a painted defect from none
on small data (the validity ladder catches it). This one learns background x defect on ten backgrounds and five
defect shapes at many strengths; it is trained on the first use and cached under a key of everything it depends
on: the corpus spec and version, the training recipe, the architecture version and the code of the generator and
of this module (:func:`pretrained_key`). Nothing is downloaded; ``evaluation.pretrained_cnn.weights_path`` pins a
file instead. Every FID it gives carries ``dtgan-pretrained-cnn@<weights fingerprint>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from dtgan.config.evaluation import DefectCNNConfig, PretrainedCNNConfig
from dtgan.data import corpus as corpus_mod
from dtgan.data import defects as defects_mod
from dtgan.data import textures as textures_mod
from dtgan.evaluation import defect_cnn as defect_cnn_mod
from dtgan.evaluation.defect_cnn import DefectCNN, load_defect_cnn, train_defect_cnn
from dtgan.evaluation.feature_cache import fingerprint_images, usable_cache_entry
from dtgan.utils.atomic import atomic_path

log = logging.getLogger(__name__)

PRETRAINED_DIR = "pretrained_cnn"
# The modules whose code decides the corpus and the network: a change in any retrains.
_CODE = (corpus_mod, textures_mod, defects_mod, defect_cnn_mod)


def corpus_spec(cfg: PretrainedCNNConfig) -> corpus_mod.CorpusSpec:
    return corpus_mod.CorpusSpec(
        images_per_class=cfg.images_per_class,
        side=cfg.input_size_px,
        render_sides=tuple(cfg.render_sides),
        min_boldness=cfg.min_boldness,
        max_boldness=cfg.max_boldness,
        seed=cfg.corpus_seed,
    )


def training_recipe(cfg: PretrainedCNNConfig) -> DefectCNNConfig:
    """The per-data-set network's training loop, with the pretraining's settings."""
    return DefectCNNConfig(
        input_size_px=cfg.input_size_px,
        feature_dim=cfg.feature_dim,
        epochs=cfg.epochs,
        min_steps=0,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
    )


def code_fingerprint() -> str:
    """Short sha256 of the source of the corpus generator and of the network's code."""
    digest = hashlib.sha256()
    for module in _CODE:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def pretrained_key(cfg: PretrainedCNNConfig) -> str:
    """What the cached weights depend on: corpus spec (with its version), recipe, architecture, code."""
    payload = {
        "corpus": corpus_spec(cfg).as_dict(),
        "recipe": training_recipe(cfg).model_dump(),
        "arch": defect_cnn_mod.ARCH_VERSION,
        "widths": list(cfg.widths),
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def pretrained_path(cfg: PretrainedCNNConfig) -> Path:
    return (
        Path(cfg.cache_dir).expanduser() / PRETRAINED_DIR / f"dtgan-pretrained-cnn-{pretrained_key(cfg)}.pt"
    )


@torch.no_grad()
def _accuracy(net: DefectCNN, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(class accuracy, defect-type accuracy) of ``net`` on images of the corpus' classes."""
    predicted = torch.cat([net(images[s : s + 512])[1].argmax(1) for s in range(0, len(images), 512)])
    per_bg = len(defects_mod.DEFECTS) + 1
    return (
        float((predicted == labels).float().mean()),
        float((predicted % per_bg == labels % per_bg).float().mean()),
    )


def pretrain(cfg: PretrainedCNNConfig, path: Path) -> Path:
    """Render the corpus, train the network on it, score it on a second corpus of another seed, save it."""
    spec = corpus_spec(cfg)
    started = time.perf_counter()
    images, labels, names = corpus_mod.render_corpus(spec)
    render_s = time.perf_counter() - started
    log.info(
        "dtgan-pretrained-cnn: training on the procedural corpus (%d images, %d classes, rendered in %.1f s)",
        len(labels),
        len(names),
        render_s,
    )
    net, train_accuracy = train_defect_cnn(
        images, labels, len(names), training_recipe(cfg), tuple(cfg.widths)
    )
    held_spec = dataclasses.replace(
        spec, images_per_class=max(8, spec.images_per_class // 4), seed=spec.seed + 1_000_003
    )
    held_images, held_labels, _ = corpus_mod.render_corpus(held_spec)
    held_accuracy, held_defect_accuracy = _accuracy(net, held_images, held_labels)
    payload = {
        "arch_version": defect_cnn_mod.ARCH_VERSION,
        "num_classes": len(names),
        "feature_dim": net.feature.out_features,
        "input_size_px": net.input_size_px,
        "widths": list(net.widths),
        "class_names": names,
        "train_accuracy": train_accuracy,
        "heldout_accuracy": held_accuracy,
        "heldout_defect_accuracy": held_defect_accuracy,
        "corpus_key": spec.key(),
        "corpus_fingerprint": fingerprint_images([str(i) for i in range(len(labels))], images),
        "corpus_images": len(labels),
        "code_fingerprint": code_fingerprint(),
        "train_s": time.perf_counter() - started,
        "state_dict": net.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    log.info(
        "dtgan-pretrained-cnn: train accuracy %.3f, held-out corpus accuracy %.3f (defect type %.3f), %.0f s; "
        "saved %s",
        train_accuracy,
        held_accuracy,
        held_defect_accuracy,
        payload["train_s"],
        path,
    )
    return path


def ensure_pretrained_cnn(cfg: PretrainedCNNConfig) -> Path:
    """The cached pretrained weights for ``cfg``, trained now when they are not there yet."""
    path = pretrained_path(cfg)
    if usable_cache_entry(path, load_defect_cnn, "dtgan-pretrained-cnn: cached weights"):
        log.info("dtgan-pretrained-cnn: cached weights %s", path)
        return path
    return pretrain(cfg, path)


def pretrained_metadata(path: str | Path) -> dict:
    """What the saved network says of itself: its corpus, its accuracies (no weights)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    keys = (
        "corpus_key",
        "corpus_fingerprint",
        "corpus_images",
        "code_fingerprint",
        "num_classes",
        "train_accuracy",
        "heldout_accuracy",
        "heldout_defect_accuracy",
        "train_s",
    )
    return {k: payload[k] for k in keys if k in payload}
