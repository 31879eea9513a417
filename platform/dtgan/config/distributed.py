"""Config of distributed training on Ray Train (workers, storage, failures) and of the GPU performance options."""

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
    fused_adam: Switch = Field("auto", description="fused Adam kernels (auto = on CUDA)")
    compile: bool = Field(
        False,
        description="torch.compile the blocks of G and the M and E networks (D never: R1 needs double backward); "
        "opt-in because the warm-up takes minutes",
    )


class DistributedConfig(Section):
    """Ray Train: how many workers, where checkpoints live, how many failures to recover from."""

    workers: int = Field(
        0, ge=0, le=4096, description="Ray Train workers; 0 = train in this process without Ray"
    )
    use_gpu: bool = Field(False, description="one GPU per worker (nccl); otherwise CPU workers (gloo)")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPU cores reserved per worker")
    max_failures: int = Field(
        2, ge=-1, description="worker-group failures to recover from the latest checkpoint (-1 = unlimited)"
    )
    storage_path: str | None = Field(
        None,
        description="local folder or pyarrow URI (s3://, gs://) holding <run_name>/ checkpoints; null = train.out_dir",
    )
    fail_at_step: int | None = Field(
        None,
        ge=1,
        description="TEST ONLY: the last worker raises once at this (reported) step of an attempt that did not "
        "start from a checkpoint, to exercise recovery",
    )
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
