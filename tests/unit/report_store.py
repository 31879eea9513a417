"""A hand-made MLflow store (sqlite + local artifacts) with studies whose metrics are known, for report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

EXTRACTOR = "inception-v3"


class Store:
    """Creates experiments and runs the way the studies log them (parent + children, tags, params, metrics)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"sqlite:///{root}/mlflow.db"
        self.client = MlflowClient(tracking_uri=self.uri)
        self._clock = 1_700_000_000_000

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=str(self.root / "artifacts" / name))

    def run(
        self,
        experiment_id: str,
        tags: dict[str, str],
        metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None,
        features: dict[str, np.ndarray] | None = None,
        status: str = "FINISHED",
    ) -> str:
        self._clock += 1000
        run = self.client.create_run(experiment_id, start_time=self._clock, tags=tags)
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, self._clock, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, v) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        for name, array in (features or {}).items():
            local = self.root / "staging" / run_id / name
            local.parent.mkdir(parents=True, exist_ok=True)
            np.save(local, array.astype(np.float32))
            self.client.log_artifact(run_id, str(local), "eval/features")
        self.client.set_terminated(run_id, status=status)
        return run_id

    def parent(self, experiment_id: str, study: str, **tags: str) -> str:
        return self.run(experiment_id, {"study": study, **tags})

    def child(self, experiment_id: str, parent_id: str, variant: str, seed: int, **kwargs) -> str:
        tags = {
            "mlflow.parentRunId": parent_id,
            "variant": variant,
            "seed": str(seed),
            "study": "test",
            "fid_extractor": kwargs.pop("extractor", EXTRACTOR),
        }
        return self.run(experiment_id, tags, **kwargs)
