"""Paint locality: the change a translation makes, measured against the generator's own reconstruction, isolates
where the defect was painted; transfer locality (against the source) also counts the reconstruction error."""

from __future__ import annotations

import torch
from eval_testdata import backgrounds, paint, to_rgb_uint8

from dtgan import keys
from dtgan.evaluation.disentanglement import PSNR_CAP_DB, transfer_and_paint_locality


def _residual(x: torch.Tensor) -> torch.Tensor:
    """A deterministic reconstruction error of about 23 dB spread over the whole image."""
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(1, *x.shape[2:], generator=g) * 18.0  # the same in every channel
    return (x.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _painter(x: torch.Tensor, y_trg: torch.Tensor) -> torch.Tensor:
    """A perfect painter with an imperfect reconstruction: its own reconstruction with a dark spot painted."""
    painted, _ = paint(_residual(x)[:, :1].float(), "spot", seed=0)
    return to_rgb_uint8(painted)


def test_a_perfect_painter_with_a_residual_is_local_against_its_reconstruction():
    x = to_rgb_uint8(backgrounds(12, seed=5))
    y = torch.ones(len(x), dtype=torch.long)
    scores = transfer_and_paint_locality(_painter, _residual, x, y, top_fraction=0.1)
    assert scores[keys.EVAL_PAINT_LOCALITY] == 1.0  # every changed pixel is in the painted spot
    assert scores[keys.EVAL_PAINT_BG_PSNR] == PSNR_CAP_DB  # the background is its reconstruction, exactly
    assert scores[keys.EVAL_TRANSFER_LOCALITY] < 0.5  # against the source the residual looks like change
    assert scores[keys.EVAL_TRANSFER_BG_PSNR] < 26.0


def test_a_painter_that_changes_everything_is_not_local_either_way():
    x = to_rgb_uint8(backgrounds(12, seed=5))
    y = torch.ones(len(x), dtype=torch.long)

    def everywhere(sources, y_trg):
        return (255 - sources.int()).to(torch.uint8)

    scores = transfer_and_paint_locality(everywhere, lambda s: s.clone(), x, y, top_fraction=0.1)
    assert scores[keys.EVAL_PAINT_LOCALITY] < 0.3 and scores[keys.EVAL_TRANSFER_LOCALITY] < 0.3
    # reconstruction = the source: both measures are the same number
    assert scores[keys.EVAL_PAINT_LOCALITY] == scores[keys.EVAL_TRANSFER_LOCALITY]
    assert scores[keys.EVAL_PAINT_BG_PSNR] == scores[keys.EVAL_TRANSFER_BG_PSNR]
