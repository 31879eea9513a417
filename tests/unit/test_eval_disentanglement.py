"""Disentanglement metrics: perfect for an identity generator, poor for a noise generator, and in between
for a generator that paints a local defect."""

from __future__ import annotations

import pytest
import torch
from eval_testdata import backgrounds, paint, to_rgb_uint8

from dtgan import keys
from dtgan.evaluation.disentanglement import (
    PSNR_CAP_DB,
    change_locality,
    identity_metrics,
    psnr,
    removal_metrics,
    ssim,
    transfer_locality_metrics,
)


def identity_generator(x, y_trg):
    return x.clone()


def noise_generator(x, y_trg):
    g = torch.Generator().manual_seed(int(y_trg.sum()) + len(x))
    return torch.randint(0, 256, x.shape, generator=g, dtype=torch.uint8)


def spot_painter(x, y_trg):
    """Paints a dark spot (about 3 % of the pixels) where y_trg != normal and leaves the rest alone."""
    painted, _ = paint(x[:, :1].float(), "spot", seed=0)
    out = to_rgb_uint8(painted)
    keep = (y_trg == 0).view(-1, 1, 1, 1)
    return torch.where(keep, x, out)


@pytest.fixture
def normals():
    return to_rgb_uint8(backgrounds(16, seed=3))


def test_psnr_and_ssim_of_known_images():
    x = torch.full((2, 3, 16, 16), 100, dtype=torch.uint8)
    assert psnr(x, x).tolist() == [PSNR_CAP_DB, PSNR_CAP_DB]
    y = x + 10  # MSE 100 -> 10 log10(255² / 100) = 28.13 dB
    assert psnr(x, y)[0].item() == pytest.approx(28.1308, abs=1e-3)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])
    rng = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, x.shape, generator=rng, dtype=torch.uint8)
    assert ssim(to_rgb_uint8(backgrounds(2, 0, side=16)), noise).abs().max() < 0.1


def test_identity_generator_scores_perfectly(normals):
    y_defect = torch.tensor([1, 2] * 8)
    assert identity_metrics(identity_generator, normals) == {
        keys.EVAL_IDENTITY_PSNR: PSNR_CAP_DB,
        keys.EVAL_IDENTITY_SSIM: pytest.approx(1.0),
    }
    locality = transfer_locality_metrics(identity_generator, normals, y_defect)
    assert locality == {keys.EVAL_TRANSFER_LOCALITY: 1.0, keys.EVAL_TRANSFER_BG_PSNR: PSNR_CAP_DB}


def test_noise_generator_scores_poorly(normals):
    y_defect = torch.tensor([1, 2] * 8)
    identity = identity_metrics(noise_generator, normals)
    assert identity[keys.EVAL_IDENTITY_PSNR] < 12 and identity[keys.EVAL_IDENTITY_SSIM] < 0.1
    locality = transfer_locality_metrics(noise_generator, normals, y_defect)
    assert locality[keys.EVAL_TRANSFER_LOCALITY] < 0.3 and locality[keys.EVAL_TRANSFER_BG_PSNR] < 12


def test_local_painter_keeps_the_background(normals):
    y_defect = torch.tensor([1, 2] * 8)
    locality = transfer_locality_metrics(spot_painter, normals, y_defect, top_fraction=0.1)
    assert locality[keys.EVAL_TRANSFER_LOCALITY] == pytest.approx(1.0)
    assert locality[keys.EVAL_TRANSFER_BG_PSNR] == PSNR_CAP_DB
    assert identity_metrics(spot_painter, normals)[keys.EVAL_IDENTITY_PSNR] == PSNR_CAP_DB


def test_removal_compares_with_the_clean_background():
    clean = backgrounds(8, seed=4)
    defect, _ = paint(clean, "scratch", seed=1)
    x_clean, x_defect = to_rgb_uint8(clean), to_rgb_uint8(defect)

    def remover(x, y_trg):  # knows the answer: a perfect defect remover
        return x_clean[: len(x)] if len(x) == len(x_clean) else pytest.fail("one batch expected")

    assert removal_metrics(remover, x_defect, x_clean[:, :1])[keys.EVAL_REMOVAL_PSNR] == PSNR_CAP_DB
    kept = removal_metrics(identity_generator, x_defect, x_clean)[keys.EVAL_REMOVAL_PSNR]
    noisy = removal_metrics(noise_generator, x_defect, x_clean)[keys.EVAL_REMOVAL_PSNR]
    assert (
        noisy < 12 < kept < PSNR_CAP_DB
    )  # leaving the scratch in is better than noise, worse than removing it


def test_locality_share_of_a_change_spread_evenly_is_the_fraction():
    x = torch.zeros(1, 3, 10, 10, dtype=torch.uint8)
    share, bg_psnr = change_locality(x, x + 7, top_fraction=0.1)
    assert share.item() == pytest.approx(0.1)
    assert bg_psnr.item() == pytest.approx(10 * torch.log10(torch.tensor(255.0**2 / 49)).item(), abs=1e-4)


def constant_generator(x, y_trg):
    return torch.full_like(x, 128)


def test_input_dependence_is_one_for_identity_and_zero_for_a_generator_that_ignores_x(normals):
    from dtgan.evaluation.disentanglement import input_dependence

    assert input_dependence(identity_generator, normals, [0, 1])[keys.EVAL_INPUT_DEPENDENCE] == pytest.approx(
        1.0
    )
    assert input_dependence(constant_generator, normals, [0, 1])[keys.EVAL_INPUT_DEPENDENCE] == 0.0
    half = input_dependence(lambda x, y: x // 2 + 64, normals, [1])[keys.EVAL_INPUT_DEPENDENCE]
    assert 0.45 < half < 0.55  # halving the contrast halves the spread over sources


def test_removal_reports_the_do_nothing_bar_it_must_clear():
    clean = backgrounds(4, seed=3)
    x_clean, x_defect = to_rgb_uint8(clean), to_rgb_uint8(paint(clean, "spot", seed=1)[0])
    kept = removal_metrics(identity_generator, x_defect, x_clean)
    assert kept[keys.EVAL_REMOVAL_PSNR] == kept[keys.EVAL_REMOVAL_PSNR_DO_NOTHING] < PSNR_CAP_DB
