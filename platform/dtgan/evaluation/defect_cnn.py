"""The offline FID feature network: a small CNN trained once per data set to recognise product x defect.

Random features say little about whether a synthetic scratch looks like a scratch; features of a network
that has learnt to tell the data set's products and defects apart do. It needs no download, trains in
seconds on a CPU at 32 px, and is cached under a key of the data fingerprint and its own config, so every
evaluation of runs on one data set uses the same weights (fingerprinted in every reported number).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dtgan.config.evaluation import DefectCNNConfig
from dtgan.evaluation.feature_cache import usable_cache_entry
from dtgan.utils.atomic import atomic_path

log = logging.getLogger(__name__)

# Bump when the architecture or the training recipe changes: cached weights are then retrained.
ARCH_VERSION = 1
_WIDTHS = (32, 64, 128)
_POOLED_SIDE = 4


def to_gray_input(x_uint8: torch.Tensor, input_size_px: int) -> torch.Tensor:
    """uint8 (N, 1|3, H, W) -> float (N, 1, input_size_px, input_size_px) in [-1, 1]."""
    x = x_uint8.float().mean(dim=1, keepdim=True) / 127.5 - 1.0
    if x.shape[-1] != input_size_px or x.shape[-2] != input_size_px:
        x = F.interpolate(
            x, size=(input_size_px, input_size_px), mode="bilinear", antialias=True, align_corners=False
        )
    return x


POOLS = ("flatten", "avgmax")


class DefectCNN(nn.Module):
    """Three conv stages (32-64-128 channels, each halving the side), a ``feature_dim`` linear layer and a linear
    classifier over ``num_classes`` (products x defects, or the corpus' backgrounds x defects).

    ``pool`` is how the last stage's map reaches the feature layer: ``flatten`` (its 4 x 4 cells in place) or
    ``avgmax`` (its mean and its maximum over the cells: the same wherever a defect sits, and a small defect's
    strongest response is kept). With ``local_classes`` > 0 a 1 x 1 convolution on the last stage's 4 x 4 map
    classifies every cell (8 x 8 px at 32 px) as normal or one defect type; the
    network's FID feature is then its feature layer followed by the *defect evidence*, each defect type's highest
    log-probability over the cells, times ``evidence_scale`` (a buffer, saved with the weights). Without the
    local head the FID feature is the feature layer alone (the per-data-set ``dtgan-defect-cnn``)."""

    def __init__(
        self,
        num_classes: int,
        feature_dim: int = 128,
        input_size_px: int = 32,
        widths: tuple[int, int, int] = _WIDTHS,
        norm: bool = False,
        pool: str = "flatten",
        local_classes: int = 0,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {pool!r}")
        self.input_size_px = input_size_px
        self.widths = tuple(int(w) for w in widths)
        self.norm = bool(norm)  # batch norm after every conv (the pretrained network: it trains faster)
        self.pool = pool
        self.local_classes = int(local_classes)

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), *([nn.BatchNorm2d(cout)] if norm else []), nn.ReLU()]

        layers: list[nn.Module] = []
        in_ch = 1
        for width in self.widths:
            layers += [*block(in_ch, width), *block(width, width), nn.AvgPool2d(2)]
            in_ch = width
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(_POOLED_SIDE))
        pooled = self.widths[-1] * (2 if pool == "avgmax" else _POOLED_SIDE**2)
        self.feature = nn.Linear(pooled, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_classes)
        if self.local_classes:
            self.local = nn.Conv2d(self.widths[-1], self.local_classes, 1)
            self.register_buffer("evidence_scale", torch.ones(()))

    def parts(self, x_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(feature layer (N, feature_dim) before its ReLU, class logits, per-cell defect logits (N, local_classes,
        4, 4) or None without the local head)."""
        h = self.trunk(to_gray_input(x_uint8, self.input_size_px))  # (N, widths[-1], 4, 4)
        local = self.local(h) if self.local_classes else None
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1) if self.pool == "avgmax" else h.flatten(1)
        features = self.feature(pooled)
        return features, self.classifier(F.relu(features)), local

    def forward(self, x_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 1|3, H, W) -> (FID features, class logits)."""
        features, logits, local = self.parts(x_uint8)
        if local is not None:
            features = torch.cat([features, self.evidence_scale * defect_evidence(local)], 1)
        return features, logits

    def forward_features(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1|3, H, W) -> the FID features."""
        return self.forward(x_uint8)[0]

    def architecture(self) -> dict:
        """What rebuilding this network needs besides its class count (saved beside the weights)."""
        return {
            "feature_dim": self.feature.out_features,
            "input_size_px": self.input_size_px,
            "widths": list(self.widths),
            "norm": self.norm,
            "pool": self.pool,
            "local_classes": self.local_classes,
        }


def defect_evidence(local_logits: torch.Tensor) -> torch.Tensor:
    """(N, K, h, w) per-cell logits over normal + K-1 defect types -> (N, K-1): each defect type's highest
    log-probability over the cells, i.e. how strongly the most defect-like place looks like that defect."""
    return F.log_softmax(local_logits, 1)[:, 1:].flatten(2).amax(2)


def weights_cache_path(
    cache_dir: str | Path, data_fingerprint: str, num_classes: int, cfg: DefectCNNConfig
) -> Path:
    """Where the weights trained on the data with this fingerprint under this config live."""
    payload = json.dumps(
        {"data": data_fingerprint, "classes": num_classes, "cfg": cfg.model_dump(), "arch": ARCH_VERSION},
        sort_keys=True,
    ).encode()
    key = hashlib.sha256(payload).hexdigest()[:16]
    return Path(cache_dir).expanduser() / "defect_cnn" / f"dtgan-defect-cnn-{key}.pt"


def train_defect_cnn(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    cfg: DefectCNNConfig,
    widths: tuple[int, int, int] = _WIDTHS,
) -> tuple[DefectCNN, float]:
    """Fit the CNN to ``labels`` (N,) long in [0, num_classes); seeded and deterministic on a CPU.

    Returns the network in eval mode and its accuracy on the training images (a sanity figure for the log).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = DefectCNN(num_classes, cfg.feature_dim, cfg.input_size_px, widths)
    # Resize once: the network sees input_size_px images every epoch.
    x_all = to_gray_input(images_uint8, cfg.input_size_px)
    x_all = ((x_all + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    order_rng = torch.Generator().manual_seed(cfg.seed)
    net.train()
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    for _epoch in range(epochs):
        order = torch.randperm(len(labels), generator=order_rng)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            _, logits = net(x_all[idx])
            loss = F.cross_entropy(logits, labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        predicted = torch.cat([net(x_all[s : s + 256])[1].argmax(1) for s in range(0, len(labels), 256)])
    accuracy = float((predicted == labels).float().mean())
    return net, accuracy


def save_defect_cnn(
    net: DefectCNN, num_classes: int, path: Path, class_names: list[str], accuracy: float
) -> None:
    """Atomically write the weights with the dimensions needed to rebuild the network."""
    payload = {
        "arch_version": ARCH_VERSION,
        "num_classes": num_classes,
        **net.architecture(),
        "class_names": class_names,
        "train_accuracy": accuracy,
        "state_dict": net.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_defect_cnn(path: str | Path) -> DefectCNN:
    """Rebuild a saved network in eval mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    widths = tuple(payload.get("widths", _WIDTHS))  # files written before the widths were stored: the default
    net = DefectCNN(  # files written before pooling and the local head existed: flatten, none
        payload["num_classes"],
        payload["feature_dim"],
        payload["input_size_px"],
        widths,
        bool(payload.get("norm", False)),
        str(payload.get("pool", "flatten")),
        int(payload.get("local_classes", 0)),
    )
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def defect_cnn_metadata(path: str | Path) -> dict:
    """What a saved network knows of itself: its class names (product/defect, only classes with training images)
    and its accuracy on its own training images."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return {"class_names": list(payload["class_names"]), "train_accuracy": float(payload["train_accuracy"])}


def ensure_defect_cnn(
    cache_dir: str | Path,
    data_fingerprint: str,
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    cfg: DefectCNNConfig,
) -> Path:
    """The cached weights for this data, trained now if they are not there yet."""
    path = weights_cache_path(cache_dir, data_fingerprint, len(class_names), cfg)
    if usable_cache_entry(path, load_defect_cnn, "offline feature extractor: cached weights"):
        log.info("offline feature extractor: cached weights %s", path)
        return path
    log.info(
        "offline feature extractor: training dtgan-defect-cnn on %d images, %d classes, %d epochs",
        len(labels),
        len(class_names),
        cfg.epochs,
    )
    net, accuracy = train_defect_cnn(images_uint8, labels, len(class_names), cfg)
    save_defect_cnn(net, len(class_names), path, class_names, accuracy)
    log.info("offline feature extractor: train accuracy %.3f, saved %s", accuracy, path)
    return path
