"""Crop&Paste: the defect lands inside the pasted (feathered) mask and nowhere else; flips, seeds, masks."""

import pytest
import torch

from dtgan.config.crop_paste import CropPasteConfig
from dtgan.errors import DataError
from dtgan.evaluation.crop_paste import crop_paste, defect_bank, feather_radius_px, feathered_alpha

SIDE = 32


def _bank(hard_shape: bool = False):
    """Two defect classes on a dark background: class 1 a bright 6x4 block, class 2 an L (asymmetric)."""
    images = torch.full((2, 1, SIDE, SIDE), 10, dtype=torch.uint8)
    masks = torch.zeros(2, 1, SIDE, SIDE, dtype=torch.uint8)
    masks[0, :, 5:11, 20:24] = 255
    masks[1, :, 12:20, 3:5] = 255  # the L: a vertical bar ...
    masks[1, :, 18:20, 5:9] = 255  # ... and its foot to the right
    images[masks > 0] = 250
    return defect_bank(images, masks, torch.tensor([1, 2]), torch.tensor([0, 1]), "test defects")


def _targets(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randint(60, 140, (n, 1, SIDE, SIDE), generator=g, dtype=torch.uint8)


def test_paste_changes_pixels_only_inside_the_feathered_mask():
    bank, targets = _bank(), _targets(6)
    cfg = CropPasteConfig(feather_sigma_fraction=0.03)  # sigma ~1 px: a visible feather
    out, alpha = crop_paste(targets, torch.tensor([1, 2, 1, 2, 1, 2]), bank, cfg, seed=0)
    changed = out != targets
    assert changed.any()
    assert not (changed & (alpha == 0)).any()  # outside the feathered mask: bit for bit the target
    assert torch.equal(out[alpha.expand_as(out) == 0], targets[alpha.expand_as(out) == 0])
    # inside the mask's core (alpha 1) the pixels are the defect's own
    core = alpha.expand_as(out) >= 1.0 - 1e-6
    assert core.any() and (out[core] == 250).all()
    # one paste per image, the size of the defect's mask plus its feather band at most
    radius = feather_radius_px(0.03 * SIDE)
    for i, area in enumerate([6 * 4, 8 * 2 + 2 * 4] * 3):
        support = int((alpha[i] > 0).sum())
        assert area <= support <= (6 + 2 * radius) * (8 + 2 * radius)


def test_hard_edge_pastes_exactly_the_mask_and_flips_follow_the_probabilities():
    bank, targets = _bank(), _targets(1)
    cfg = CropPasteConfig(feather_sigma_fraction=0.0, hflip_prob=1.0, vflip_prob=0.0)
    out, alpha = crop_paste(targets, torch.tensor([2]), bank, cfg, seed=5)
    rows = alpha[0, 0].any(1).nonzero().flatten()
    cols = alpha[0, 0].any(0).nonzero().flatten()
    pasted = alpha[0, 0, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    original = (bank.masks[1, 0, 12:20, 3:9]).float()
    assert torch.equal(pasted, original.flip(-1))  # the L mirrored left-right, not upside down
    assert set(alpha.unique().tolist()) == {0.0, 1.0}
    assert (out[alpha.expand_as(out) > 0] == 250).all()


def test_crop_paste_is_deterministic_given_a_seed():
    bank, targets = _bank(), _targets(8)
    y = torch.tensor([1, 2] * 4)
    a, _ = crop_paste(targets, y, bank, CropPasteConfig(), seed=11)
    b, _ = crop_paste(targets, y, bank, CropPasteConfig(), seed=11)
    c, _ = crop_paste(targets, y, bank, CropPasteConfig(), seed=12)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_feathered_alpha_is_one_inside_and_zero_beyond_the_radius():
    mask = torch.zeros(1, 20, 20, dtype=torch.bool)
    mask[:, 8:12, 8:12] = True
    sigma = 1.0
    alpha = feathered_alpha(mask, sigma)
    r = feather_radius_px(sigma)
    assert (alpha[mask] == 1).all()  # the defect itself is pasted opaque
    assert 0.0 < float(alpha[0, 7, 10]) < 0.5 and 0.0 < float(alpha[0, 6, 10]) < float(
        alpha[0, 7, 10]
    )  # soft edge
    outside = torch.ones(20, 20, dtype=torch.bool)
    outside[8 - r : 12 + r, 8 - r : 12 + r] = False
    assert (alpha[0][outside] == 0).all()


def test_defects_without_masks_cannot_be_pasted():
    images = torch.zeros(3, 1, SIDE, SIDE, dtype=torch.uint8)
    masks = torch.zeros(3, 1, SIDE, SIDE, dtype=torch.uint8)
    masks[1, :, 2:4, 2:4] = 255
    bank = defect_bank(images, masks, torch.tensor([1, 1, 2]), torch.zeros(3, dtype=torch.long), "x")
    assert len(bank) == 1  # the two empty masks are dropped (with a warning)
    with pytest.raises(DataError, match="no masked real images of defect index 2"):
        crop_paste(_targets(1), torch.tensor([2]), bank, CropPasteConfig(), seed=0)
    with pytest.raises(DataError, match="x: no masks; Crop&Paste cuts each defect out by its mask"):
        defect_bank(images, None, torch.tensor([1, 1, 2]), torch.zeros(3, dtype=torch.long), "x")
