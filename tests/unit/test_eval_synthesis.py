"""Synthesis: seeded, independent of the batch size, references of the target domain only."""

from __future__ import annotations

import pytest
import torch

from dtgan.config import load_config
from dtgan.errors import DataError
from dtgan.evaluation.synthesis import pick_references, synthesize
from dtgan.models import build_nets
from dtgan.training.checkpoint import InferenceNets


def _nets(ablation: str) -> InferenceNets:
    config = load_config("tiny", [f"model.ablation={ablation}"])
    torch.manual_seed(0)
    built = build_nets(config.model, num_domains=3, num_products=2)
    parts = {name: built[name].eval() for name in ("generator", "mapping_network", "style_encoder")}
    return InferenceNets(config=config, vocab=None, step=0, **parts)


@pytest.fixture(scope="module")
def nets():
    """Step (f): every random draw comes from synthesize's seed (no per-pixel mapping noise)."""
    return _nets("f")


def _sources(n: int) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(n), dtype=torch.uint8
    )


def test_latent_synthesis_is_seeded_and_independent_of_the_batch_size(nets):
    x, y = _sources(10), torch.tensor([1, 2] * 5)
    a = synthesize(nets, x, y, "latent", seed=3, batch_size=4)
    b = synthesize(nets, x, y, "latent", seed=3, batch_size=10)
    c = synthesize(nets, x, y, "latent", seed=4, batch_size=10)
    assert a.dtype == torch.uint8 and a.shape == x.shape
    # the same draws for any batch size; the arithmetic may round one grey level apart where the CPU's conv
    # kernels change with the batch (seen on an AMX Xeon: 1 value of 30,720), a new seed changes the images
    apart = (a.int() - b.int()).abs()
    assert apart.max() <= 1 and (apart > 0).float().mean() < 1e-3
    assert (a.int() - c.int()).abs().float().mean() > 1


def test_synthesis_with_mapping_noise_is_seeded():
    nets_g = _nets("g")  # the per-pixel noise is drawn per batch: same seed and batch size, same images
    x, y = _sources(6), torch.tensor([1, 2] * 3)
    a = synthesize(nets_g, x, y, "latent", seed=3, batch_size=4)
    assert torch.equal(a, synthesize(nets_g, x, y, "latent", seed=3, batch_size=4))
    assert not torch.equal(a, synthesize(nets_g, x, y, "latent", seed=5, batch_size=4))


def test_reference_synthesis_uses_the_chosen_reference(nets):
    x, y = _sources(6), torch.full((6,), 2)
    refs = _sources(4)
    out = synthesize(nets, x, y, "reference", references=refs, seed=1, batch_size=4)
    chosen = pick_references(y, None, 4, seed=1)
    one_by_one = torch.cat(
        [
            synthesize(
                nets, x[i : i + 1], y[i : i + 1], "reference", references=refs[chosen[i] : chosen[i] + 1]
            )
            for i in range(6)
        ]
    )
    assert (out.int() - one_by_one.int()).abs().max() <= 1, (out.int() - one_by_one.int()).abs().max()
    other = synthesize(nets, x[:1], y[:1], "reference", references=refs[(chosen[0] + 1) % 4 :][:1])
    assert (out[:1].int() - other.int()).abs().max() > 1  # (batch size changes rounding by at most 1 level)


def test_references_are_drawn_from_the_target_domain():
    y_trg = torch.tensor([1, 2, 1, 2, 1, 2, 1, 2])
    y_ref = torch.tensor([0, 1, 2, 2, 1, 0])
    index = pick_references(y_trg, y_ref, len(y_ref), seed=0)
    assert torch.equal(y_ref[index], y_trg)
    with pytest.raises(DataError, match="defect index 3"):
        pick_references(torch.tensor([3]), y_ref, len(y_ref), seed=0)
