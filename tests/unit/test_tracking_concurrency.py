"""Trial processes share the driver's sqlite store: after init_tracking, concurrent writers are safe."""

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from dtgan.config.tracking import TrackingConfig
from dtgan.tracking import init_tracking

REPO = Path(__file__).resolve().parents[2]
NUM_TRIAL_PROCESSES = 4

# What a Ray trial process does: its own Tracker on the driver's URI, a nested run, metrics, the end.
TRIAL = """
import sys
from dtgan.tracking import Tracker
uri, parent, key, data = sys.argv[1:5]
tracker = Tracker(uri)
trial = tracker.start_trial(parent, key, {"loss": {"lambda_cyc": 1.0}, "train": {"seed": int(key[-1])}})
tracker.log_dataset(trial.run_id, data)  # every trial logs the same data set: first writers race on its insert
for step in range(1, 6):
    tracker.log_metrics(trial.run_id, {"train/loss_g": step * 0.1}, step=step)
tracker.end_run(trial.run_id)
print(trial.run_id)
"""


@pytest.mark.slow  # five fresh Python processes importing MLflow: ~12 s of CPU, >20 s on a busy 2-core box
def test_four_trial_processes_start_runs_concurrently_after_init(tmp_path):
    tracker = init_tracking(TrackingConfig(), study="concurrent", cwd=tmp_path)
    study = tracker.start_study("concurrent", resume_key="k")
    data = tmp_path / "benchmark.parquet"
    data.write_bytes(b"PAR1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRIAL, tracker.tracking_uri, study.run_id, f"a-seed{i}", str(data)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(NUM_TRIAL_PROCESSES)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * NUM_TRIAL_PROCESSES, [err[-2000:] for _, err in outputs]

    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    children = client.search_runs(
        [study.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{study.run_id}'"
    )
    assert sorted(r.data.tags["trial_key"] for r in children) == [f"a-seed{i}" for i in range(4)]
    assert {r.info.run_id for r in children} == {out.strip().splitlines()[-1] for out, _ in outputs}
    seen = [(r.data.tags["trial_key"], r.info.status, r.data.metrics.get("train/loss_g")) for r in children]
    assert all(status == "FINISHED" and last == pytest.approx(0.5) for _, status, last in seen), seen
    assert all([d.dataset.name for d in r.inputs.dataset_inputs] == ["benchmark"] for r in children)
    histories = {
        r.data.tags["trial_key"]: client.get_metric_history(r.info.run_id, "train/loss_g") for r in children
    }
    assert all(len(h) == 5 for h in histories.values()), {
        k: [(m.step, m.value) for m in h] for k, h in histories.items()
    }
