"""Checks a downstream study makes before any work (no image decoded or synthesised): the timm backbone exists,
its initial weights can be had as ``downstream.weights`` asks, and the generator arms have a checkpoint.

Where the weights come from, in order: ``downstream.pretrained_paths[backbone]`` (a local file), the timm /
Hugging Face cache (``try_to_load_from_cache``, or ``$TORCH_HOME/hub/checkpoints`` for URL weights), the hub
(only with ``downstream.hub_download``, the opt-in for clusters), else random initialisation ('scratch'),
which ``weights=imagenet`` refuses.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from dtgan.config.downstream import DownstreamConfig
from dtgan.errors import ConfigError

FILE, CACHE, HUB, SCRATCH = "file", "cache", "hub", "scratch"


def _timm():
    import timm  # heavy import, only where a backbone is checked or built

    return timm


def check_backbone(name: str) -> None:
    """A one-line ConfigError unless timm knows the model ``name``."""
    if not _timm().is_model(name):
        raise ConfigError(
            f"downstream.backbone: unknown timm model '{name}'; e.g. resnet50, efficientnet_b4, resnet10t"
        )


@functools.lru_cache(maxsize=32)
def cached_weights(backbone: str) -> str | None:
    """The local file of the backbone's default ImageNet weights in the Hugging Face or torch hub cache, if any."""
    from timm.models import get_pretrained_cfg

    pretrained = get_pretrained_cfg(backbone, allow_unregistered=True) if _timm().is_model(backbone) else None
    if pretrained is None:
        return None
    if pretrained.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        names = [pretrained.hf_hub_filename] if pretrained.hf_hub_filename else []
        for filename in [*names, "model.safetensors", "pytorch_model.bin"]:
            found = try_to_load_from_cache(pretrained.hf_hub_id, filename)
            if isinstance(found, str) and Path(found).is_file():
                return found
    if pretrained.url:
        import torch.hub

        local = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(pretrained.url)
        if local.is_file():
            return str(local)
    return None


def _hub_name(backbone: str) -> str:
    from timm.models import get_pretrained_cfg

    pretrained = get_pretrained_cfg(backbone, allow_unregistered=True)
    return (pretrained.hf_hub_id or pretrained.url or backbone) if pretrained is not None else backbone


def weights_source(cfg: DownstreamConfig) -> str:
    """'file:<path>', 'cache:<path>', 'hub' or 'scratch': where the backbone's initial weights come from.

    Raises:
        ConfigError: a pretrained_paths file is missing, or ``weights=imagenet`` and none can be had.
    """
    if cfg.weights == "scratch":
        return SCRATCH
    path = cfg.pretrained_paths.get(cfg.backbone)
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(
                f"downstream.pretrained_paths.{cfg.backbone}: weights file '{file}' not found; fix the path"
                + (
                    " or remove the entry (weights=auto then trains from scratch)"
                    if cfg.weights == "auto"
                    else ""
                )
            )
        return f"{FILE}:{file}"
    cached = cached_weights(cfg.backbone)
    if cached is not None:
        return f"{CACHE}:{cached}"
    if cfg.hub_download:
        return HUB
    if cfg.weights == "imagenet":
        raise ConfigError(
            f"downstream.weights=imagenet: no ImageNet weights for {cfg.backbone} (no "
            f"downstream.pretrained_paths.{cfg.backbone}, none in the timm/Hugging Face cache for "
            f"{_hub_name(cfg.backbone)}); set -o downstream.pretrained_paths.{cfg.backbone}=FILE, opt in to the "
            "download with -o downstream.hub_download=true (clusters), or -o downstream.weights=scratch"
        )
    return SCRATCH


def weights_label(source: str) -> str:
    """'ImageNet' or 'from scratch': how a table heading names the initial weights."""
    return "from scratch" if source == SCRATCH else "ImageNet"


def check_downstream(cfg: DownstreamConfig, checkpoint: str | None = None) -> str:
    """Everything that can be checked from the config alone, before any image is read; returns
    :func:`weights_source`. Studies call this first (``dtgan downstream``, experiments/augmentation.py and the
    study trials), so a bad backbone, a missing weights file or a missing checkpoint costs one line, exit 2."""
    check_backbone(cfg.backbone)
    source = weights_source(cfg)
    if cfg.synthetic_arms and checkpoint is None:
        raise ConfigError(
            f"downstream.arms {list(cfg.synthetic_arms)} need a generator checkpoint (CHECKPOINT_OR_RUN); pass "
            "one, or keep the arms without a generator: -o 'downstream.arms=[no_aug,trad_aug,crop_paste]'"
        )
    held_out = cfg.held_out_data
    if held_out is not None and "://" not in held_out and not Path(held_out).expanduser().is_file():
        raise ConfigError(
            f"downstream.held_out_data {held_out} does not exist; render it (e.g. `make cpu-data`: dtgan data synth "
            "--seed 1 --held-out-per-cell 300 ...) or set downstream.held_out_data=null"
        )
    return source
