"""A short overfit run on four fixed synthetic images lowers the cycle and style reconstruction losses."""

import pytest
import torch

from dtgan.config import load_config
from dtgan.losses import Batch
from dtgan.training.environment import Environment
from dtgan.training.state import build_train_state
from dtgan.training.steps import train_step

STEPS, WINDOW = 30, 5


@pytest.mark.parametrize("ablation", ["a", pytest.param("g", marks=pytest.mark.slow)])
def test_overfitting_four_images_lowers_cycle_and_reconstruction_losses(ablation):
    cfg = load_config("tiny", [f"model.ablation={ablation}", "train.batch_size=4", "optim.lr=1e-3", "optim.mapping_lr=1e-4"])
    state = build_train_state(cfg, num_domains=3, num_products=2, env=Environment())
    g = torch.Generator().manual_seed(0)
    # smooth images (blurred noise) in [-1, 1], like textures
    x = (torch.nn.functional.avg_pool2d(torch.randn(4, 3, 32, 32, generator=g), 5, 1, 2) * 3).clamp(-1, 1)
    history = []
    for _ in range(STEPS):
        batch = Batch(
            x_real=x, y_org=torch.tensor([0, 1, 2, 0]), p_org=torch.tensor([0, 1, 0, 1]),
            x_ref=x.flip(0), x_ref2=x.roll(1, 0), y_trg=torch.tensor([1, 2, 0, 1]),
            z_trg=torch.randn(4, cfg.model.latent_dim, generator=state.z_generator),
            z_trg2=torch.randn(4, cfg.model.latent_dim, generator=state.z_generator),
        )
        history.append({k: v.item() for k, v in train_step(state, batch, cfg).items()})

    def mean(name, rows):
        return sum(r[name] for r in rows) / len(rows)

    for name in ("g/latent/cyc", "g/ref/cyc", "g/latent/sty"):
        first, last = mean(name, history[:WINDOW]), mean(name, history[-WINDOW:])
        assert last < 0.8 * first, f"{name}: {first:.3f} -> {last:.3f}"
