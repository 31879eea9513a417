"""Seeding and the RNG states a checkpoint carries, as plain types and tensors (``weights_only=True`` safe).

Each rank keeps its own states (its mapping noise differs, see ``rank_seed``), so a checkpoint carries one entry
per rank, and each entry holds the CUDA state of the one device that rank trains on, not of every visible device:
a process sees all GPUs of its node under Ray, and a checkpoint written where four were visible must resume where
one is, or none.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

# Ranks get distinct z draws and noise: seed + RANK_SEED_STRIDE * rank (rank 0 keeps the configured seed).
RANK_SEED_STRIDE = 1_000_003


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int) -> int:
    return seed + RANK_SEED_STRIDE * rank


def capture_rng_state(z_generator: torch.Generator, device: torch.device | None = None) -> dict[str, Any]:
    """The global Python/NumPy/torch states, the z generator's state and, on a CUDA ``device``, that device's."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": list(py_state), "gauss_next": py_gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "z_generator": z_generator.get_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda_device"] = torch.cuda.get_rng_state(device)
    return state


def cuda_state_for(state: dict[str, Any], device: torch.device | None) -> torch.Tensor | None:
    """The saved CUDA RNG state to restore on ``device``, or None (a CPU device, or nothing saved for it).

    ``cuda_device`` is the state of the device the rank trained on. Older checkpoints hold ``cuda``, a list with
    one state per visible device; the entry of the same index is used when there is one.
    """
    if device is None or device.type != "cuda":
        return None
    if "cuda_device" in state:
        return state["cuda_device"]
    per_device = state.get("cuda") or []
    index = device.index if device.index is not None else torch.cuda.current_device()
    return per_device[index] if index < len(per_device) else None


def restore_rng_state(
    state: dict[str, Any], z_generator: torch.Generator, device: torch.device | None = None
) -> None:
    """Inverse of :func:`capture_rng_state`; a CUDA state is restored only on a CUDA ``device``."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["kind"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    z_generator.set_state(state["z_generator"])
    cuda = cuda_state_for(state, device)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def restore_rank_rng_state(
    per_rank: list[dict[str, Any]],
    z_generator: torch.Generator,
    *,
    rank: int,
    seed: int,
    step: int,
    device: torch.device | None = None,
) -> bool:
    """Restore rank ``rank``'s saved states; True when the checkpoint had them.

    A rank the checkpoint has no entry for (it was written by fewer ranks) takes the shared z stream from rank
    0's entry (every rank draws the same z rows, see ``TrainingData.next_batch``) and seeds its own noise from
    (seed, rank, step): distinct from every other rank's, and the same on every retry of that resume.
    """
    if rank < len(per_rank):
        restore_rng_state(per_rank[rank], z_generator, device)
        return True
    z_generator.set_state(per_rank[0]["z_generator"])
    seed_everything(rank_seed(seed, rank) + step)
    log.info("checkpoint has RNG states of %d rank(s); rank %d seeds its noise afresh", len(per_rank), rank)
    return False
