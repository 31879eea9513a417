"""The pretraining corpus' photograph-like material: 1/f noise, cluttered foliage, Voronoi cells, images shot in the
dark, and defect masks that keep only what is left to see of a defect after clipping."""

from __future__ import annotations

import numpy as np
import pytest

from dtgan.data import corpus as corpus_mod

NEW = ("pink_noise", "foliage", "cells")


@pytest.mark.parametrize("name", NEW)
def test_the_photograph_like_backgrounds_are_seeded_images(name):
    render = corpus_mod.GENERIC_BACKGROUNDS[name]
    a = render(np.random.default_rng(3), 4, 48)
    b = render(np.random.default_rng(3), 4, 48)
    c = render(np.random.default_rng(4), 4, 48)
    assert a.shape == (4, 48, 48) and a.dtype == np.float32 and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert float(a.std(axis=(1, 2)).min()) > 0.02  # structure, not a flat field
    assert -0.5 < float(a.mean()) < 1.5


def test_pink_noise_has_a_falling_spectrum():
    field = corpus_mod.pink_noise(np.random.default_rng(0), 16, 64) - 0.5
    power = np.abs(np.fft.rfft2(field)) ** 2
    low, high = power[:, 1:4, 1:4].mean(), power[:, 24:32, 24:32].mean()
    assert low > 30 * high  # white noise would give ~1


def test_foliage_is_dark_and_cluttered():
    scene = corpus_mod.foliage(np.random.default_rng(0), 16, 64)
    assert float(np.median(scene)) < 0.4  # mostly shadow, as the trees of a photograph
    assert float((scene < 0.15).mean()) > 0.1
    assert float(np.abs(np.diff(scene, axis=2)).mean()) > 0.02  # many edges


def test_the_corpus_has_every_new_background_and_dark_images():
    names = list(corpus_mod.backgrounds())
    assert all(name in names for name in NEW) and len(names) == 14
    spec = corpus_mod.CorpusSpec(images_per_class=64, render_sides=(32,))
    means = np.concatenate(
        [corpus_mod._render_chunk(spec, b, 0, 0, 64)[0].mean(axis=(1, 2)) / 255 for b in range(len(names))]
    )
    dark = means < 0.2
    assert 0.1 < float(dark.mean()) < 0.6  # a share shot in the dark, most not


def test_a_defect_clipped_away_has_no_mask(monkeypatch):
    """On a black image a dark defect leaves (nearly) nothing to see and its mask is (nearly) empty; a bright one is
    masked whole."""
    monkeypatch.setattr(corpus_mod, "DARK_SHARE", 1.0)
    monkeypatch.setattr(corpus_mod, "DARK_GAMMA", (60.0, 60.0))  # every background pushed to ~0
    spec = corpus_mod.CorpusSpec(images_per_class=4, render_sides=(32,))

    def square(sign):
        def render(rng, n, size, boldness):
            delta = np.zeros((n, size, size), np.float32)
            delta[:, 8:16, 8:16] = sign * 0.5
            return delta

        return render

    for sign, visible in ((-1.0, False), (1.0, True)):
        monkeypatch.setattr(corpus_mod, "DEFECTS", {"scratch": square(sign)})
        images, masks = corpus_mod._render_chunk(spec, 0, 1, 0, 4)
        inside = masks[:, 8:16, 8:16]
        assert float(masks.sum()) == float(inside.sum())  # never outside the defect
        if visible:
            assert float(inside.min()) == 1.0 and bool((images[:, 8:16, 8:16] > 100).all())
        else:  # only the sensor noise's few brighter pixels had anything to lose
            assert float(inside.mean()) < 0.2 and int(images[:, 8:16, 8:16].max()) == 0
