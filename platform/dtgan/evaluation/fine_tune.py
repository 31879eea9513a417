"""``dtgan-pretrained-cnn`` fine-tuned on a data set (``evaluation.pretrained_cnn.fine_tune``, off by default): the
pretrained network with a new head of the data set's product x defect classes, every weight trained a few hundred
steps on its reference split. Cached per (pretrained weights, data, settings) under ``evaluation.cache_dir``; the
file keeps the pretrained network's corpus record and names the data it was fine-tuned on."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dtgan.config.evaluation import PretrainedCNNConfig
from dtgan.evaluation.defect_cnn import DefectCNN, load_defect_cnn, to_gray_input
from dtgan.evaluation.feature_cache import sha256_file, usable_cache_entry
from dtgan.evaluation.pretrained_cnn import TRAINER_VERSION, _accuracy
from dtgan.utils.atomic import atomic_path

log = logging.getLogger(__name__)

FINE_TUNED_DIR = "pretrained_cnn_fine_tuned"


def fine_tuned_path(
    cache_dir: str | Path, base: Path, data_fingerprint: str, cfg: PretrainedCNNConfig
) -> Path:
    """Where the pretrained network ``base`` fine-tuned on the data with this fingerprint is cached."""
    payload = {
        "base": sha256_file(base),
        "data": data_fingerprint,
        "steps": cfg.fine_tune_steps,
        "lr": cfg.fine_tune_lr,
        "batch": cfg.batch_size,
        "seed": cfg.seed,
        "trainer": TRAINER_VERSION,
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / FINE_TUNED_DIR / f"dtgan-pretrained-cnn-ft-{key}.pt"


def fine_tune(
    base: Path,
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    data_fingerprint: str,
    cfg: PretrainedCNNConfig,
    cache_dir: str | Path,
) -> Path:
    """The pretrained network with a new head of the data set's ``class_names``, every weight trained
    ``fine_tune_steps`` Adam steps (lr ``fine_tune_lr``) on the data set's reference split; cached. Its record keeps
    the base network's corpus and names the data it was fine-tuned on."""
    path = fine_tuned_path(cache_dir, base, data_fingerprint, cfg)
    if usable_cache_entry(path, load_defect_cnn, "dtgan-pretrained-cnn (fine-tuned): cached weights"):
        return path
    started = time.perf_counter()
    pretrained = load_defect_cnn(base)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        arch = pretrained.architecture()
        net = DefectCNN(
            len(class_names),
            arch["feature_dim"],
            arch["input_size_px"],
            tuple(arch["widths"]),
            True,
            arch["pool"],
            arch["local_classes"],
        )
    state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("classifier.")}
    net.load_state_dict(state, strict=False)
    x_all = to_gray_input(images_uint8, net.input_size_px)
    x_all = ((x_all + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.fine_tune_lr)
    rng = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for _step in range(cfg.fine_tune_steps):
        idx = torch.randint(len(labels), (min(cfg.batch_size, len(labels)),), generator=rng)
        loss = F.cross_entropy(net(x_all[idx])[1], labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    accuracy, _ = _accuracy(net, x_all, labels)
    payload = torch.load(base, map_location="cpu", weights_only=True)
    payload.update(
        num_classes=len(class_names),
        class_names=list(class_names),
        train_accuracy=accuracy,
        fine_tuned_on=data_fingerprint,
        fine_tune_steps=cfg.fine_tune_steps,
        base_fingerprint=sha256_file(base)[:16],
        state_dict=net.state_dict(),
    )
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    log.info(
        "dtgan-pretrained-cnn: fine-tuned on %d images (%d classes) in %.0f s, train accuracy %.3f; saved %s",
        len(labels),
        len(class_names),
        time.perf_counter() - started,
        accuracy,
        path,
    )
    return path


def fine_tune_record(path: str | Path) -> dict:
    """What a fine-tuned file says of its fine-tuning (empty for a network that was not fine-tuned)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    keys = ("fine_tuned_on", "fine_tune_steps", "base_fingerprint")
    return {k: payload[k] for k in keys if k in payload}
