"""The classifier recipe learns (near-zero error on a trivially separable problem) and follows Appendix B."""

import pytest
import torch
from downstream_fixtures import make_study_data

from dtgan.config.downstream import DownstreamConfig
from dtgan.downstream.arms import Cell, build_training_set
from dtgan.downstream.augment import traditional_augment
from dtgan.downstream.classifier import build_classifier
from dtgan.downstream.recipe import fit_classifier

TINY = dict(
    backbone="resnet10t", img_size=32, batch_size=16, learning_rate=0.05, device="cpu", weights="scratch"
)


def test_error_on_a_trivially_separable_problem_is_near_zero():
    data = make_study_data(normals_per_product=20, eval_per_cell=10)
    cfg = DownstreamConfig(epochs=4, **TINY)
    torch.manual_seed(0)
    model, _ = build_classifier(cfg, num_classes=3, with_domain_head=True)
    train = build_training_set(data, Cell("mix", 20), seed=0)
    fit = fit_classifier(model, train, data.val, data.test, cfg, seed=0)
    assert fit["test_error_pct"] <= 2.0, fit  # 60 test images: at most one mistake
    assert 1 <= fit["best_epoch"] <= 4 and len(fit["lr_per_epoch"]) == 4


def test_learning_rate_drops_tenfold_after_the_plateau_patience():
    data = make_study_data(normals_per_product=8, eval_per_cell=2)
    cfg = DownstreamConfig(epochs=6, plateau_patience_epochs=1, **TINY)
    model, _ = build_classifier(cfg, num_classes=3, with_domain_head=False)
    no_val = data.val.subset(torch.zeros(0, dtype=torch.long))  # a constant val loss: never improves
    fit = fit_classifier(
        model, build_training_set(data, Cell("no_aug", 8), 0), no_val, data.test, cfg, seed=0
    )
    # epoch 1 sets the best; epochs 2 and 3 do not improve -> cut x0.1 (patience 1); again after 4 and 5
    assert fit["lr_per_epoch"] == pytest.approx([0.05, 0.05, 0.05, 0.005, 0.005, 0.0005])
    assert fit["best_epoch"] == 1


def test_traditional_augmentation_keeps_range_and_shape_and_is_seeded():
    cfg = DownstreamConfig()
    x = torch.rand(8, 3, 32, 32)
    a = traditional_augment(x, cfg, torch.Generator().manual_seed(3))
    b = traditional_augment(x, cfg, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.allclose(a, x)
    off = DownstreamConfig(aug_hflip_prob=0, aug_jitter_fraction=0, aug_brightness=0, aug_contrast=0)
    torch.testing.assert_close(traditional_augment(x, off, torch.Generator()), x)
