"""timm defect classifiers with an optional real-vs-synthetic domain head; local pretrained weights only."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream.grl import DomainHead
from dtgan.downstream.preflight import CACHE, FILE, HUB, SCRATCH, weights_source
from dtgan.errors import ConfigError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClassifierOutput:
    logits: torch.Tensor  # (N, K) defect-type logits
    domain_logits: torch.Tensor | None  # (N,) real(0)/synthetic(1) logits, None without a domain head


class DefectClassifier(nn.Module):
    """A timm backbone with its usual linear head; the domain head branches off the pooled features.

    ``forward`` takes float images in [0, 1] and normalises them with the backbone's pretrained mean/std,
    so callers never need to know the backbone.
    """

    def __init__(self, backbone: nn.Module, domain_head: DomainHead | None, in_chans: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.domain_head = domain_head
        cfg = getattr(backbone, "pretrained_cfg", {}) or {}
        mean = torch.tensor(cfg.get("mean", IMAGENET_MEAN), dtype=torch.float32)
        std = torch.tensor(cfg.get("std", IMAGENET_STD), dtype=torch.float32)
        if in_chans == 1:  # timm averages the stem over RGB; the statistics follow
            mean, std = mean.mean().reshape(1), std.mean().reshape(1)
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.reshape(1, -1, 1, 1), persistent=False)

    def forward(self, x01: torch.Tensor) -> ClassifierOutput:
        """x01 (N, C, H, W) in [0, 1] -> logits (N, K) and, with a domain head, domain logits (N,)."""
        x = (x01 - self.mean) / self.std
        features = self.backbone.forward_features(x)  # (N, F, h, w)
        pooled = self.backbone.forward_head(features, pre_logits=True)  # (N, F), global average pool
        logits = self.backbone.get_classifier()(pooled)  # (N, K): the usual FC, untouched by the branch
        domain_logits = self.domain_head(pooled) if self.domain_head is not None else None
        return ClassifierOutput(logits, domain_logits)


def _raise_bad_weights(cfg: DownstreamConfig, source: str, exc: BaseException) -> None:
    """A weights file timm could not load: one line naming it and what to do. The loader's own message is
    left out (torch's suggests ``weights_only=False``, which would run any code the file carries)."""
    if not source.startswith((f"{FILE}:", f"{CACHE}:")):
        return
    path = source.split(":", 1)[1]
    where = (
        f"downstream.pretrained_paths.{cfg.backbone}"
        if source.startswith(f"{FILE}:")
        else "the timm/Hugging Face cache"
    )
    raise ConfigError(
        f"{where}: {path} is not loadable as {cfg.backbone} weights ({type(exc).__name__}); point it at that "
        "model's weights file (.safetensors or a state-dict .pth), delete a corrupt cached copy, or set "
        "-o downstream.weights=scratch"
    ) from None


def build_classifier(
    cfg: DownstreamConfig, num_classes: int, with_domain_head: bool
) -> tuple[DefectClassifier, str]:
    """The configured timm backbone (+ domain head); returns the model and its
    :func:`~dtgan.downstream.preflight.weights_source` ('file:...', 'cache:...', 'hub' or 'scratch').

    Never waits on a hub: without ``hub_download`` HF_HUB_OFFLINE=1 is set before timm is asked for weights.
    """
    import timm  # heavy import, only where a classifier is built

    source = weights_source(cfg)
    kwargs: dict = {"pretrained": False}
    if source.startswith((f"{FILE}:", f"{CACHE}:")):
        path = source.split(":", 1)[1]
        kwargs = {"pretrained": True, "pretrained_cfg_overlay": {"file": path}}
    elif source == HUB:
        kwargs = {"pretrained": True}
    if source != HUB:  # a local file or random init must never reach for the network
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        backbone = timm.create_model(cfg.backbone, num_classes=num_classes, in_chans=cfg.in_chans, **kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ConfigError(
                f"downstream.backbone: unknown timm model '{cfg.backbone}'; e.g. resnet50, efficientnet_b4, resnet10t"
            ) from None
        _raise_bad_weights(cfg, source, exc)
        raise
    except (
        Exception
    ) as exc:  # the loaders' own errors (pickle, safetensors, zip): one line, never their advice
        _raise_bad_weights(cfg, source, exc)
        raise
    log.info(
        "classifier %s: %s initial weights (%s)",
        cfg.backbone,
        "ImageNet" if source != SCRATCH else "random",
        source,
    )
    head = None
    if with_domain_head:
        head = DomainHead(
            backbone.num_features,
            cfg.domain_head_hidden_dim,
            cfg.resolved_domain_head_layers,
            cfg.grl_coefficient,
        )
    return DefectClassifier(backbone, head, cfg.in_chans), source
