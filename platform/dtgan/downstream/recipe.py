"""The classifier recipe of Appendix B: SGD, reduce-on-plateau, model selection on val, error on test."""

from __future__ import annotations

import copy
import logging
import time

import torch
import torch.nn.functional as F

from dtgan.config.downstream import DownstreamConfig
from dtgan.data.labelled import LabelledImages
from dtgan.downstream.arms import TrainingSet
from dtgan.downstream.augment import traditional_augment
from dtgan.downstream.classifier import DefectClassifier
from dtgan.errors import TrainingDiverged

log = logging.getLogger(__name__)


def to_unit(images_uint8: torch.Tensor, in_chans: int, device: torch.device | str) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float (N, in_chans, H, W) in [0, 1] on ``device`` (gray <-> RGB as needed)."""
    x = images_uint8.to(device, non_blocking=True).float().div_(255.0)
    if x.shape[1] == in_chans:
        return x
    if in_chans == 1:
        return x.mean(dim=1, keepdim=True)
    return x.expand(-1, in_chans, -1, -1)


@torch.no_grad()
def evaluate(
    model: DefectClassifier, split: LabelledImages, cfg: DownstreamConfig, device: torch.device | str
) -> tuple[float, float]:
    """(mean cross-entropy, error in %) of ``model`` on ``split``."""
    model.eval()
    loss_sum, wrong = 0.0, 0
    for start in range(0, len(split), cfg.resolved_batch_size):
        x = to_unit(split.images[start : start + cfg.resolved_batch_size], cfg.in_chans, device)
        y = split.y[start : start + cfg.resolved_batch_size].to(device)
        logits = model(x).logits
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        wrong += int((logits.argmax(1) != y).sum())
    n = max(len(split), 1)
    return loss_sum / n, 100.0 * wrong / n


@torch.no_grad()
def predict(
    model: DefectClassifier, split: LabelledImages, cfg: DownstreamConfig, device: torch.device | str
) -> torch.Tensor:
    """(N,) predicted class of every image of ``split`` (on the CPU)."""
    model.eval()
    out = [
        model(to_unit(split.images[s : s + cfg.resolved_batch_size], cfg.in_chans, device))
        .logits.argmax(1)
        .cpu()
        for s in range(0, len(split), cfg.resolved_batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def cell_counts(predicted: torch.Tensor, split: LabelledImages) -> dict[str, list[int]]:
    """'p,k' (product index, true class) -> [images, wrong]: the test error of every product x class cell."""
    out: dict[str, list[int]] = {}
    for p, k in sorted(set(zip(split.p.tolist(), split.y.tolist()))):
        rows = (split.p == p) & (split.y == k)
        out[f"{p},{k}"] = [int(rows.sum()), int((predicted[rows] != k).sum())]
    return out


def _batches(train: TrainingSet, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One shuffled epoch of pool indices; a trailing batch of one image is dropped (BatchNorm needs two)."""
    order = train.index[torch.randperm(len(train), generator=generator)]
    batches = list(order.split(batch_size))
    if len(batches) > 1 and batches[-1].numel() < 2:
        batches.pop()
    return batches


def fit_classifier(
    model: DefectClassifier,
    train: TrainingSet,
    val: LabelledImages,
    test: LabelledImages,
    cfg: DownstreamConfig,
    seed: int,
    device: torch.device | str = "cpu",
) -> dict:
    """Train ``model`` for ``cfg.epochs``, keep the epoch with the best ``cfg.selection_metric`` on val, and
    return its test error. The test split is touched once, at the end."""
    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience_epochs
    )
    generator = torch.Generator().manual_seed(seed)
    best: dict = {"score": float("inf")}
    lr_history, seen, train_seconds = [], 0, 0.0
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        for rows in _batches(train, cfg.resolved_batch_size, generator):
            x = to_unit(train.images[rows], cfg.in_chans, device)
            if train.augment:
                x = traditional_augment(x, cfg, generator)
            out = model(x)
            loss = F.cross_entropy(out.logits, train.y[rows].to(device))
            if out.domain_logits is not None:  # the GRL flips this term's gradient into the backbone
                loss = loss + F.binary_cross_entropy_with_logits(
                    out.domain_logits, train.synthetic[rows].to(device)
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += rows.numel()
        train_seconds += time.perf_counter() - t0
        val_loss, val_error = evaluate(model, val, cfg, device)
        lr_history.append(optimizer.param_groups[0]["lr"])
        scheduler.step(val_loss)
        score = val_loss if cfg.selection_metric == "val_loss" else val_error
        if score < best["score"]:
            best = {
                "score": score,
                "epoch": epoch + 1,
                "val_loss": val_loss,
                "val_error": val_error,
                "state": copy.deepcopy(model.state_dict()),
            }
        log.debug(
            "epoch %d: loss %.4f val_loss %.4f val_error %.2f%%", epoch + 1, loss.item(), val_loss, val_error
        )
    if "state" not in best:
        raise TrainingDiverged(
            f"classifier seed {seed}: the validation loss was NaN in every epoch; "
            "lower downstream.learning_rate"
        )
    model.load_state_dict(best["state"])
    test_loss, test_error = evaluate(model, test, cfg, device)
    return {
        "test_error_pct": test_error,
        "test_cells": cell_counts(predict(model, test, cfg, device), test),
        "test_loss": test_loss,
        "val_error_pct": best["val_error"],
        "val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": cfg.epochs,
        "lr_per_epoch": lr_history,
        "train_seconds": train_seconds,
        "train_images_per_s": seen / max(train_seconds, 1e-9),
    }
