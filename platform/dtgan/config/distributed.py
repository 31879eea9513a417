"""Config of distributed training on Ray Train: workers, storage, failures."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from dtgan.config.base import Section

FAIL_AT_STEP_ENV = "DTGAN_TEST_FAIL_AT_STEP"  # the test-only failure injection (training.ray_train)


class DistributedConfig(Section):
    """Ray Train: how many workers, where checkpoints live, how many failures to recover from."""

    workers: int = Field(
        0,
        ge=0,
        le=4096,
        description="Ray Train workers; 0 or 1 = train in this process without Ray (training.launch)",
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

    @model_validator(mode="before")
    @classmethod
    def _test_hook_left_the_schema(cls, data: Any) -> Any:
        """Configs saved by older versions hold ``fail_at_step: null``: drop it; a value is refused."""
        if isinstance(data, dict) and "fail_at_step" in data:
            if data["fail_at_step"] is not None:
                raise ValueError(
                    f"distributed.fail_at_step is no config key any more (a test hook): set "
                    f"{FAIL_AT_STEP_ENV}={data['fail_at_step']} in the environment instead"
                )
            data = {k: v for k, v in data.items() if k != "fail_at_step"}
        return data
