"""Config of the training step's speed options (``train.performance``): bf16 autocast, channels_last, fused
Adam, torch.compile. Not distributed: they apply to one process as much as to a worker group."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dtgan.config.base import Section

# "auto" = on where it pays: CUDA, and for bf16/channels_last a CPU with native bf16 (training.performance).
Switch = Literal["auto"] | bool


class PerformanceConfig(Section):
    """Speed options of the training step. R1 and the EMA always stay in fp32."""

    bf16_autocast: Switch = Field(
        "auto",
        description="bfloat16 autocast of the forward passes (auto = on CUDA and on CPUs with AMX/AVX512-BF16)",
    )
    channels_last: Switch = Field(
        "auto",
        description="channels_last memory format of the networks (auto = on CUDA and on CPUs with AMX/AVX512-BF16)",
    )
    fused_adam: Switch = Field("auto", description="fused Adam kernels (auto = on, CUDA and CPU)")
    compile: bool = Field(
        False,
        description="torch.compile the blocks of G and the M and E networks, and D with lazy R1 (loss.r1_every > 1: "
        "its R1 passes run eager, double backward cannot be compiled); "
        "opt-in because the warm-up takes minutes",
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = Field(
        "default",
        description="torch.compile's mode with compile on: reduce-overhead replays CUDA graphs (CUDA only; the "
        "paper configuration's shapes are static), the others generate kernels only",
    )
