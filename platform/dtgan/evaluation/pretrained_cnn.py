"""The default offline FID feature network ``dtgan-pretrained-cnn``: the small CNN of
:mod:`dtgan.evaluation.defect_cnn` pre-trained once on the procedural corpus (:mod:`dtgan.data.corpus`), never on
the images being judged.

A network trained only on a data set's own ``gan_train`` split can be too weak to tell a painted defect from none
on small data (the validity ladder catches it). This one learns background x defect on fourteen backgrounds and five
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
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dtgan.config.evaluation import PretrainedCNNConfig
from dtgan.data import corpus as corpus_mod
from dtgan.data import defects as defects_mod
from dtgan.data import textures as textures_mod
from dtgan.evaluation import defect_cnn as defect_cnn_mod
from dtgan.evaluation.defect_cnn import DefectCNN, defect_evidence, load_defect_cnn, to_gray_input
from dtgan.evaluation.feature_cache import fingerprint_images, usable_cache_entry
from dtgan.utils.atomic import atomic_path
from dtgan.utils.lock import waiting_lock

log = logging.getLogger(__name__)

PRETRAINED_DIR = "pretrained_cnn"
TRAINER_VERSION = 4  # bump when train_pretrained changes: cached networks are then trained again
# The modules whose code decides the corpus and the network: a change in any retrains.
_CODE = (corpus_mod, textures_mod, defects_mod, defect_cnn_mod)
LOCAL_GRID = 4  # cells per side of the local head (the last conv stage's pooled map)
# A cell of the local head's grid is labelled with the image's defect where the defect covers this share of it.
CELL_COVERAGE = 0.05
# The defect evidence carries this many times the variance of the feature layer in the FID feature (over a
# held-out corpus). At 1 (equal) the content of photographs (sky, leaves, petals) swamped "is there a defect" on
# the real-photo check set; at 16 the feature layer keeps about a sixteenth of the distance, enough to see blur and
# noise (docs/offline-metrics.md, "The ladder on the three check sets").
EVIDENCE_SHARE = 16.0


def corpus_spec(cfg: PretrainedCNNConfig) -> corpus_mod.CorpusSpec:
    return corpus_mod.CorpusSpec(
        images_per_class=cfg.images_per_class,
        side=cfg.input_size_px,
        render_sides=tuple(cfg.render_sides),
        min_boldness=cfg.min_boldness,
        max_boldness=cfg.max_boldness,
        seed=cfg.corpus_seed,
    )


def cell_labels(masks: torch.Tensor, defect_labels: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, grid, grid) long: each cell's defect type where the image's defect covers at least
    :data:`CELL_COVERAGE` of it, else 0 (normal). ``masks`` (N, side, side) float, ``defect_labels`` (N,)."""
    coverage = F.adaptive_avg_pool2d(masks[:, None].float(), grid)[:, 0]
    return torch.where(coverage >= CELL_COVERAGE, defect_labels[:, None, None], 0).long()


def train_pretrained(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    masks: torch.Tensor,
    num_classes: int,
    cfg: PretrainedCNNConfig,
) -> tuple[DefectCNN, float]:
    """Fit the network (batch norm) to the background x defect classes, plus the defect type alone: the joint
    class logits summed over backgrounds (logsumexp) are a defect-type classifier whose cross-entropy is added, so
    that the feature is about the defect at least as much as about the background; plus, with ``local_weight``,
    the cross-entropy of the local head against each cell's defect type from the masks (where the defect is).
    Adam with a cosine decay; seeded. Returns the network in eval mode and its class accuracy on the training
    images."""
    per_bg = len(defects_mod.DEFECTS) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = DefectCNN(
            num_classes,
            cfg.feature_dim,
            cfg.input_size_px,
            tuple(cfg.widths),
            norm=True,
            pool=cfg.pool,
            local_classes=per_bg if cfg.local_weight > 0 else 0,
        )
    x_all = to_gray_input(images_uint8, cfg.input_size_px)
    x_all = ((x_all + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    defect_labels = labels % per_bg
    cells = cell_labels(masks, defect_labels, LOCAL_GRID) if net.local_classes else None
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(labels) / cfg.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps))
    )
    order_rng = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for _epoch in range(cfg.epochs):
        order = torch.randperm(len(labels), generator=order_rng)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            _, logits, local = net.parts(x_all[idx])
            defect_logits = logits.view(len(idx), -1, per_bg).logsumexp(dim=1)
            loss = F.cross_entropy(logits, labels[idx]) + cfg.defect_weight * F.cross_entropy(
                defect_logits, defect_labels[idx]
            )
            if local is not None:
                loss = loss + cfg.local_weight * F.cross_entropy(local, cells[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    accuracy, _ = _accuracy(net, x_all, labels)
    return net, accuracy


@torch.no_grad()
def balance_evidence(net: DefectCNN, images_uint8: torch.Tensor, share: float = EVIDENCE_SHARE) -> float:
    """Set the network's ``evidence_scale`` so that, over ``images_uint8`` (a corpus it was not trained on), the
    defect evidence carries ``share`` times the variance (summed over its dimensions) of the feature layer: FID
    then weighs "is there a defect, and which" ``share`` times as much as everything else the feature layer sees.
    Returns the scale."""
    features, local = [], []
    for start in range(0, len(images_uint8), 512):
        f, _, loc = net.parts(images_uint8[start : start + 512])
        features.append(f)
        local.append(defect_evidence(loc))
    spread = torch.cat(features).var(0).sum()
    evidence_spread = torch.cat(local).var(0).sum()
    scale = float((share * spread / evidence_spread).sqrt()) if evidence_spread > 0 else 1.0
    net.evidence_scale.fill_(scale)
    return scale


def code_fingerprint() -> str:
    """Short sha256 of the source of the corpus generator and of the network's code."""
    digest = hashlib.sha256()
    for module in _CODE:
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def pretrained_key(cfg: PretrainedCNNConfig) -> str:
    """What the cached weights depend on: corpus spec (with its version), recipe, architecture, code."""
    payload = {
        "corpus": corpus_spec(cfg).as_dict(),
        "recipe": {
            k: v
            for k, v in cfg.model_dump(mode="json").items()
            if k
            in (
                "widths",
                "feature_dim",
                "epochs",
                "batch_size",
                "lr",
                "seed",
                "defect_weight",
                "pool",
                "local_weight",
            )
        },
        "trainer": TRAINER_VERSION,
        "arch": defect_cnn_mod.ARCH_VERSION,
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
    corpus = corpus_mod.render_corpus(spec)
    images, labels, names = corpus.images, corpus.labels, corpus.names
    render_s = time.perf_counter() - started
    log.info(
        "dtgan-pretrained-cnn: training on the procedural corpus (%d images, %d classes, rendered in %.1f s)",
        len(labels),
        len(names),
        render_s,
    )
    net, train_accuracy = train_pretrained(images, labels, corpus.masks, len(names), cfg)
    held_spec = dataclasses.replace(
        spec, images_per_class=max(8, spec.images_per_class // 4), seed=spec.seed + 1_000_003
    )
    held = corpus_mod.render_corpus(held_spec)
    held_accuracy, held_defect_accuracy = _accuracy(net, held.images, held.labels)
    scale = balance_evidence(net, held.images) if net.local_classes else None
    payload = {
        "arch_version": defect_cnn_mod.ARCH_VERSION,
        "num_classes": len(names),
        **net.architecture(),
        "evidence_scale": scale,
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
    with waiting_lock(path):  # trials or tests starting together: one trains, the others then read its file
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
        "evidence_scale",
        "train_s",
    )
    return {k: payload[k] for k in keys if k in payload}
